#!/usr/bin/env bash
# Verifying N session JSON files (~2 KB each; default 50 000) on the filesystem store with full
# integrity, side by side:
#   1. agentlab-ops backup verify --sample all (presence, completeness, integrity, trend)
#   2. the spec's pipeline: `python -m json.tool FILE` once per file (timed on a subset of
#      PER_FILE files, default 500, and scaled to N: one process per file is linear)
#   3. one Python process that hashes (SHA-256) and parses every file against the manifest
# Prints times, ratios, and agentlab-ops' peak memory at N/10 and N objects.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50000}"
PER_FILE="${PER_FILE:-500}"
cargo build -q --release --bin agentlab-ops

D="$(mktemp -d /tmp/agentlab-verifybench.XXXXXX)"
trap 'rm -rf "$D"' EXIT

make_tree() { # root count
    python3 benches/make_sessions.py "$1" "$2"
}

config() { # root
    cat <<CFG
environment = "bench"
[service]
base_url = "http://127.0.0.1:9"
[backups]
store = "fs"
path = "$1"
datasets = ["sessions"]
sample = "all"
[journal]
disabled = true
CFG
}

run_ours() { # root -> "seconds peak_kib"
    config "$1" >"$D/cfg.toml"
    /usr/bin/time -f "%e %M" -o "$D/time" target/release/agentlab-ops --config "$D/cfg.toml" --format json \
        backup verify --date 2026-11-29 --sample all >"$D/out.json" || true
    python3 -c "import json,sys; d=json.load(open('$D/out.json')); ds=d['payload']['datasets'][0]; \
assert d['findings']==[], d['findings']; assert ds['objects']==$2, ds; \
assert [l['outcome'] for l in ds['levels']][:3]==['pass','pass','pass'], ds['levels']"
    cat "$D/time"
}

echo "== building $N objects (and $((N / 10)) for the memory comparison)"
make_tree "$D/big" "$N"
make_tree "$D/small" "$((N / 10))"
find "$D/big" -type f -exec cat {} + >/dev/null   # warm the page cache for everyone

RUNS="${RUNS:-3}"
ours=999; ours_kb=0
for _ in $(seq "$RUNS"); do
    read -r t kb < <(run_ours "$D/big" "$N")
    if python3 -c "import sys; sys.exit(0 if $t < $ours else 1)"; then ours=$t; fi
    ours_kb=$kb
done
read -r _ small_kb < <(run_ours "$D/small" "$((N / 10))")

start=$(date +%s.%N)
find "$D/big/sessions/20261129" -name "session-*.json" | sort >"$D/files"
head -n "$PER_FILE" "$D/files" | while read -r f; do
    python3 -m json.tool "$f" >/dev/null
done
per_file_subset=$(python3 -c "import time; print(time.time() - $start)")
per_file=$(python3 -c "print($per_file_subset * $N / $PER_FILE)")

single=999
for _ in $(seq "$RUNS"); do
t=$(python3 - "$D/big" <<'PY'
import hashlib, json, os, sys, time
root = sys.argv[1]
t = time.perf_counter()
prefix = "sessions/20261129/"
bad = 0
with open(os.path.join(root, prefix, "MANIFEST.jsonl")) as m:
    next(m)
    for line in m:
        e = json.loads(line)
        with open(os.path.join(root, e["key"]), "rb") as f:
            data = f.read()
        if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
            bad += 1
        json.loads(data)
assert bad == 0
print(f"{time.perf_counter() - t:.3f}")
PY
)
if python3 -c "import sys; sys.exit(0 if $t < $single else 1)"; then single=$t; fi
done

echo "verifying $N session files (~2 KB) on the filesystem store, full integrity (best of $RUNS):"
printf '  %-44s %9.2f s\n' "agentlab-ops backup verify --sample all" "$ours"
printf '  %-44s %9.2f s  (%d files timed, scaled to %d)\n' "python -m json.tool per file (spec)" "$per_file" "$PER_FILE" "$N"
printf '  %-44s %9.2f s\n' "one Python process (sha256 + json.loads)" "$single"
python3 -c "print(f'  ratios: per-file/agentlab-ops {$per_file/max($ours,0.01):.0f}x, single-python/agentlab-ops {$single/max($ours,0.01):.1f}x')"
echo "  agentlab-ops peak RSS: $small_kb KiB at $((N / 10)) objects, $ours_kb KiB at $N objects"
