#!/usr/bin/env python3
"""Write the Prometheus test fixture: 30 days of 5-minute samples of two counters,
http_requests_total{code="200"} and {code="500"}, with an error spike planted in the last hours,
as OpenMetrics (for `promtool tsdb create-blocks-from openmetrics`), and the exact good/total
of every window the SLO evaluator reads at the fixture's end (expected.json), computed from the
same integers.

Usage: prometheus-fixture.py OUT_DIR   (writes OUT_DIR/data.om and OUT_DIR/expected.json)
"""
import json
import sys

END = 1796140800  # 2026-12-01T00:00:00Z, a multiple of the 5-minute step
STEP = 300
DAYS = 30
N = DAYS * 86400 // STEP


def per_step(i):
    """Requests in step i: steady traffic with a little noise, an error spike in the last 2 h."""
    total = 1000 + (i * 7919) % 200
    errors = (i * 104729) % 3  # 0-2 errors a step: a 99.9% SLO is comfortably met
    left = N - i
    if left <= 24:  # the last 2 hours: 5% errors
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
    start = END - N * STEP
    for code, series in (("200", good), ("500", bad)):
        for i, v in enumerate(series):
            f.write(f'http_requests_total{{code="{code}"}} {v} {start + i * STEP}\n')
    f.write("# EOF\n")

windows = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "3d": 259200, "30d": DAYS * 86400}
expected = {}
for name, secs in windows.items():
    k = secs // STEP
    g = good[N] - good[N - k]
    e = bad[N] - bad[N - k]
    expected[name] = {"good": g, "total": g + e}
json.dump({"end": END, "windows": expected}, open(f"{out}/expected.json", "w"), indent=1)
