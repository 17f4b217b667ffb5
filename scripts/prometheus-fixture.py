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

END = 1796140800  # 2026-12-01T16:00:00Z
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


HOUR = 3600
HOURS = DAYS * 24
CAP_START = START - START % 86400  # the capacity series run midnight to midnight
HOSTS = ("web-1:9100", "web-2:9100")
GIB = 1 << 30


def use(host, resource, day):
    """The monthly review's capacity fixture: a host's share of a resource on day 0..29."""
    h = HOSTS.index(host)
    return {
        "cpu": (0.30 + 0.002 * day, 0.40 + 0.004 * day),
        "memory": (0.50, 0.55 + 0.01 * day),
        "disk": (0.40, 0.62),
    }[resource][h]


# Request durations per handler: cumulative bucket shares (le -> share), 1000 requests an hour.
BUCKETS = {
    "/api/run": ((0.1, 0.10), (0.5, 0.30), (1.0, 0.50), (2.5, 0.98), ("+Inf", 1.0)),
    "/api/sessions": ((0.1, 0.60), (0.25, 0.97), (0.5, 1.0), (1.0, 1.0), ("+Inf", 1.0)),
}


def write_capacity(f):
    """node_exporter's CPU, memory and filesystem series and a request-duration histogram, hourly
    over the 30 days (and the day before, so the first day's rate has a sample before it): what
    the monthly review's Prometheus capacity and performance read."""
    f.write("# HELP node_cpu_seconds_total CPU seconds.\n# TYPE node_cpu_seconds_total counter\n")
    for host in HOSTS:
        for cpu in ("0", "1"):
            idle = 0.0
            for k in range(-24, HOURS + 1):
                if k > -24:
                    idle += HOUR * (1 - use(host, "cpu", max(k - 1, 0) // 24))
                f.write(f'node_cpu_seconds_total{{instance="{host}",cpu="{cpu}",mode="idle"}} {idle:.3f} {CAP_START + k * HOUR}\n')
    gauges = (
        ("node_memory_MemTotal_bytes", "Memory", "", lambda h, d: 8 * GIB),
        ("node_memory_MemAvailable_bytes", "Memory", "", lambda h, d: round(8 * GIB * (1 - use(h, "memory", d)))),
        ("node_filesystem_size_bytes", "Disk", ',mountpoint="/",fstype="ext4"', lambda h, d: 50 * GIB),
        ("node_filesystem_avail_bytes", "Disk", ',mountpoint="/",fstype="ext4"', lambda h, d: round(50 * GIB * (1 - use(h, "disk", d)))),
    )
    for metric, help_text, labels, value in gauges:
        f.write(f"# HELP {metric} {help_text}.\n# TYPE {metric} gauge\n")
        for host in HOSTS:
            for k in range(-24, HOURS + 1):
                d = max(k - 1, 0) // 24  # a sample closes the hour before it
                f.write(f'{metric}{{instance="{host}"{labels}}} {value(host, d)} {CAP_START + k * HOUR}\n')
    f.write("# HELP http_request_duration_seconds Request duration.\n# TYPE http_request_duration_seconds histogram\n")
    for handler, buckets in BUCKETS.items():
        for k in range(HOURS + 1):
            t = CAP_START + k * HOUR
            for le, share in buckets:
                f.write(f'http_request_duration_seconds_bucket{{handler="{handler}",le="{le}"}} {round(1000 * k * share)} {t}\n')
            f.write(f'http_request_duration_seconds_count{{handler="{handler}"}} {1000 * k} {t}\n')
            f.write(f'http_request_duration_seconds_sum{{handler="{handler}"}} {500.0 * k} {t}\n')


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
    write_capacity(f)
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
