#!/usr/bin/env bash
# The Python binding's overhead, side by side in one run (both release builds):
#   1. verify_backups over N session files (default 10 000, ~2 KB, filesystem store, full
#      integrity), best of RUNS, called from Python (`agentlab_ops.verify_backups`) and from
#      Rust (examples/binding_overhead.rs): ratio Python / Rust (goal <= 1.05);
#   2. the per-call cost of a trivial operation, evaluating an SLO from counts, from Python
#      (`agentlab_ops.evaluate_slo`) and from Rust: the difference is the binding's overhead.
# Uses .venv-test (scripts/setup-test-deps.sh) and installs a release build of the extension
# into it (the test command reinstalls the debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
RUNS="${RUNS:-5}"
CALLS="${CALLS:-100000}"
./scripts/setup-test-deps.sh >/dev/null
cargo build -q --release --example binding_overhead
(cd agentlab-ops-py && VIRTUAL_ENV="$PWD/../.venv-test" ../.venv-test/bin/maturin develop -q --release >/dev/null 2>&1)
PY=.venv-test/bin/python

D="$(mktemp -d /tmp/agentlab-pybench.XXXXXX)"
trap 'rm -rf "$D"' EXIT
python3 benches/make_sessions.py "$D/backups" "$N"
cat >"$D/cfg.toml" <<CFG
environment = "bench"
[service]
base_url = "http://127.0.0.1:9"
[backups]
store = "fs"
path = "$D/backups"
datasets = ["sessions"]
[journal]
disabled = true
CFG

rust=$(target/release/examples/binding_overhead "$D/cfg.toml" "$RUNS" "$CALLS")
py=$("$PY" - "$D/cfg.toml" "$RUNS" "$CALLS" <<'PY'
import sys, time
import agentlab_ops
cfg, runs, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = agentlab_ops.Environment.from_file(cfg)
best = float("inf")
for _ in range(runs):
    t = time.perf_counter()
    r = agentlab_ops.verify_backups(env, date="2026-11-29", sample="all")
    best = min(best, time.perf_counter() - t)
    assert r.ok, str(r)
evaluate = agentlab_ops.evaluate_slo
t = time.perf_counter()
red = 0
for i in range(calls):
    s = evaluate(0.999, 999_000 + i % 1000, 1_000_000)
    red += s.zone == "red"
per_call = (time.perf_counter() - t) / calls * 1e9
print(f"verify_best_s={best:.4f} slo_call_ns={per_call:.0f}")
PY
)
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
rv=$(val "$rust" verify_best_s); pv=$(val "$py" verify_best_s)
rs=$(val "$rust" slo_call_ns); ps=$(val "$py" slo_call_ns)
echo "verify_backups, $N session files (~2 KB), filesystem store, full integrity, best of $RUNS:"
printf '  %-28s %8.4f s\n' "from Rust" "$rv" "from Python" "$pv"
python3 -c "print(f'  ratio Python/Rust: {$pv/$rv:.3f} (goal <= 1.05)')"
echo "evaluate an SLO from counts, $CALLS calls:"
printf '  %-28s %8.0f ns/call\n' "from Rust" "$rs" "from Python" "$ps"
python3 -c "print(f'  binding overhead: {($ps-$rs)/1000:.2f} us per call')"
