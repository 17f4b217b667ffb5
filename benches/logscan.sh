#!/usr/bin/env bash
# The log scanner side by side with the tools of the spec and of today, in one run, on a
# generated access+app log (examples/loggen.rs: a day of minutes, an incident in the last 30):
#   1. error search: `agentlab-ops logs scan --top none` vs `grep -c -i -E` and `rg -c -i`
#   2. top talkers: the whole scan vs the spec's `awk '{print $1}' | sort | uniq -c | sort -nr
#      | head` (and with LC_ALL=C)
#   3. the whole scan (matches, top talkers, spikes, templates): time and peak RSS at 100 MiB
#      and at SIZE (default 1024 MiB)
#   4. remote: bytes over SSH for a `--since 10m` scan vs copying the file (plain and gzip)
# Page cache warm; best of 3 for each. Needs ripgrep (apt-get install ripgrep).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-1024}"
command -v rg >/dev/null || { echo "needs ripgrep: apt-get install ripgrep" >&2; exit 2; }
cargo build -q --release -p agentlab-ops-cli
cargo build -q --release --example loggen
BIN="$PWD/target/release/agentlab-ops"
W="$(mktemp -d /tmp/allog.XXXXXX)"
trap 'rm -rf "$W"' EXIT

# best-of-3 wall time and the peak RSS (KiB) of a command, its output discarded
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
best = None
for _ in range(3):
    t = time.perf_counter()
    # Into a pipe, not /dev/null: GNU grep stops at the first match when its output is /dev/null.
    subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=False)
    d = time.perf_counter() - t
    best = d if best is None else min(best, d)
print(f"{best:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}
sh_measure() { measure sh -c "$1"; }
ratio() { python3 -c "print(f'{float($1)/float($2):.2f}')"; }

for mib in 100 "$SIZE"; do
    log="$W/app-$mib.log"
    ./target/release/examples/loggen "$log" "$mib"
    cat "$log" >/dev/null
    echo "== $mib MiB log ($(stat -c %s "$log") bytes, $(wc -l <"$log") lines)"
    read -r ours_s _ < <(measure "$BIN" logs scan "$log" --top none)
    read -r grep_s _ < <(measure grep -c -i -E 'error|exception' "$log")
    read -r rg_s _ < <(measure rg -c -i 'error|exception' "$log")
    echo "error search: agentlab-ops ${ours_s}s, grep -i -E ${grep_s}s, rg -i ${rg_s}s; ours/rg = $(ratio "$ours_s" "$rg_s")×, grep/ours = $(ratio "$grep_s" "$ours_s")×"
    read -r whole_s whole_rss < <(measure "$BIN" logs scan "$log")
    read -r awk_s _ < <(sh_measure "awk '{print \$1}' '$log' | sort | uniq -c | sort -nr | head -10")
    read -r awkc_s _ < <(sh_measure "export LC_ALL=C; awk '{print \$1}' '$log' | sort | uniq -c | sort -nr | head -10")
    echo "top talkers: agentlab-ops whole scan ${whole_s}s, spec pipeline ${awk_s}s, LC_ALL=C ${awkc_s}s; spec/ours = $(ratio "$awk_s" "$whole_s")×, C/ours = $(ratio "$awkc_s" "$whole_s")×"
    echo "whole scan: ${whole_s}s, peak RSS $((whole_rss / 1024)) MiB"
done

# Remote: the last 10 minutes of the big log over the test sshd, vs copying the file.
source scripts/test-servers.sh
./scripts/setup-test-deps.sh >/dev/null
trap 'stop_test_servers; rm -rf "$W"' EXIT
start_test_servers >/dev/null
SD="$AGENTLAB_TEST_SSH_DIR"
port="${AGENTLAB_TEST_SSH_PORTS%% *}"
cat >"$W/agentlab-ops.toml" <<CFG
[service]
base_url = "http://127.0.0.1:9"
[ssh]
identity_file = "$SD/client_ed25519"
known_hosts = "$SD/known_hosts"
config_file = "/dev/null"
control_dir = "$W/ctl"
[[hosts]]
name = "web-1"
address = "ssh://$AGENTLAB_TEST_SSH_USER@127.0.0.1:$port"
CFG
mkdir -p "$W/ctl"
log="$W/app-$SIZE.log"
since="$(date -u -d @$((1796140800 - 600)) +%Y-%m-%dT%H:%M:%SZ)"
t0=$(date +%s.%N)
"$BIN" --config "$W/agentlab-ops.toml" --format json logs scan "web-1:$log" --since "$since" >"$W/remote.json" || true
t1=$(date +%s.%N)
python3 - "$W/remote.json" "$(stat -c %s "$log")" "$(gzip -1 -c "$log" | wc -c)" "$(python3 -c "print(f'{$t1-$t0:.2f}')")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["transfer"]
size, gz, secs = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"remote --since 10m: {t['wire_bytes']} bytes over SSH (gzip {t['gzip']}) in {secs}s, {r['lines']} lines, "
      f"burst {r['burst_start']}; copying the file: {size} bytes ({size / t['wire_bytes']:.0f}×), "
      f"gzip'd: {gz} bytes ({gz / t['wire_bytes']:.0f}×)")
PY
