#!/usr/bin/env python3
"""Write the Prometheus test fixture: 30 days of 1-minute samples of two counters,
http_requests_total{code="200"} and {code="500"}, with uneven traffic (nights at 00-08 UTC
carry a twentieth of the day's requests but as many errors) and an error spike planted in the
last 2 hours, as OpenMetrics (for `promtool tsdb create-blocks-from openmetrics`); the exact
good/total of every window the SLO evaluator reads at the fixture's end (expected.json),
computed from the same integers; Sloth's 30-day figure as its rules compute it (the unweighted
mean of the 5-minute ratios), to compare with; and history.yml, the one rule whose 30 days of
history the period rules read (Sloth's 5-minute ratio, cut from prometheus-rules/sloth.yml).

Usage: prometheus-fixture.py OUT_DIR
"""
import json
import os
import sys

END = 1796140800  # 2026-12-01T00:00:00Z
STEP = 60
DAYS = 30
N = DAYS * 86400 // STEP
START = END - N * STEP


def per_step(i):
    """Requests in minute i (ending at START + i*STEP)."""
    hour = ((START + i * STEP) // 3600) % 24
    night = hour < 8
    total = 10 + (i * 7919) % 5 if night else 200 + (i * 7919) % 40
    errors = 1 if i % 20 == 0 else 0
    if N - i < 120:  # the last 2 hours: 5% errors
        errors = total // 20
    return total - errors, errors


good, bad = [0], [0]
for i in range(1, N + 1):
    g, e = per_step(i)
    good.append(good[-1] + g)
    bad.append(bad[-1] + e)

out = sys.argv[1]
with open(f"{out}/data.om", "w") as f:
    f.write("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n")
    for code, series in (("200", good), ("500", bad)):
        for i, v in enumerate(series):
            f.write(f'http_requests_total{{code="{code}"}} {v} {START + i * STEP}\n')
    f.write("# EOF\n")

windows = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "3d": 259200, "30d": DAYS * 86400}
expected = {}
for name, secs in windows.items():
    k = secs // STEP
    g = good[N] - good[N - k]
    e = bad[N] - bad[N - k]
    expected[name] = {"good": g, "total": g + e}

# Sloth: rate(...[5m]) evaluated once a minute sees the 4 one-minute intervals between the 5
# samples of its window; the 30-day value is the plain mean of those ratios.
ratios = []
for k in range(4, N + 1):
    e = bad[k] - bad[k - 4]
    t = e + good[k] - good[k - 4]
    ratios.append(e / t)
sloth_mean = sum(ratios) / len(ratios)
json.dump(
    {"end": END, "windows": expected, "sloth_30d_error_ratio": sloth_mean},
    open(f"{out}/expected.json", "w"),
    indent=1,
)

rules = open(os.path.join(os.path.dirname(__file__), "prometheus-rules", "sloth.yml")).read()
start = rules.index("  - record: slo:sli_error:ratio_rate5m\n")
end = rules.index("  - record:", start + 1)
with open(f"{out}/history.yml", "w") as f:
    f.write("groups:\n- name: sloth-history\n  rules:\n" + rules[start:end])
