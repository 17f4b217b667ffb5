#!/usr/bin/env bash
# `restart` over the real sshd hosts (3 ports of the test sshd; systemd is the stand-in
# systemctl managing a real Python service per host), side by side with the spec's own
# procedure in one run: per host, `ssh host systemctl restart` then a curl loop until healthy
# (same 0.2 s poll interval for both). Then the per-command overhead on a reused SSH session
# (100 `true` through SshHost).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-test-deps.sh
cargo build -q --release -p agentlab-ops-cli
cargo build -q --release --example ssh_bench
# shellcheck source=scripts/test-servers.sh
source scripts/test-servers.sh
trap 'for d in "$W"/h*; do kill "$(cat "$d/app.pid" 2>/dev/null)" 2>/dev/null || true; done; stop_test_servers' EXIT
start_test_servers >/dev/null
W="$(mktemp -d /tmp/alrb.XXXXXX)"
SD="$AGENTLAB_TEST_SSH_DIR"
USER_="$AGENTLAB_TEST_SSH_USER"
SSH=(ssh -F /dev/null -i "$SD/client_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$SD/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes)
cfg="$W/agentlab-ops.toml"
cat >"$cfg" <<CFG
[service]
base_url = "http://127.0.0.1:9"
[ssh]
identity_file = "$SD/client_ed25519"
known_hosts = "$SD/known_hosts"
config_file = "/dev/null"
control_dir = "$W/ctl"
[service_manager]
unit = "{unit}"
health_url = "http://127.0.0.1:{port}"
[restart]
health = { deadline = "20s", interval = "200ms", successes = 1 }
CFG
i=0
for p in $AGENTLAB_TEST_SSH_PORTS; do
    i=$((i + 1))
    d="$W/h$i"
    mkdir -p "$d"
    http="$(free_port)"
    printf 'ExecStart=python3 %s --port %s --dir %s\nWorkingDirectory=%s\nPIDFile=%s/app.pid\nStandardOutput=file:%s/app.log\nTimeoutStopSec=5\n' \
        "$PWD/scripts/standins/agentlab-service.py" "$http" "$d" "$d" "$d" "$d" >"$SD/units/alrb-h$i.service"
    printf '[[hosts]]\nname = "h%s"\naddress = "ssh://%s@127.0.0.1:%s"\nvars = { unit = "alrb-h%s", port = "%s" }\n' "$i" "$USER_" "$p" "$i" "$http" >>"$cfg"
    echo "$p $http alrb-h$i" >>"$W/hosts"
    "${SSH[@]}" -p "$p" "$USER_@127.0.0.1" systemctl start "alrb-h$i"
done
n="$(wc -l <"$W/hosts")"

# The spec's procedure, host by host.
start=$(date +%s.%N)
while read -r p http unit; do
    "${SSH[@]}" -p "$p" "$USER_@127.0.0.1" systemctl restart "$unit" </dev/null
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$http/health" && break
        sleep 0.2
    done
done <"$W/hosts"
spec=$(python3 -c "import time; print(f'{time.time() - $start:.3f}')")

bin=target/release/agentlab-ops
run() {
    local s
    s=$(date +%s.%N)
    AGENTLAB_OPS_JOURNAL="$W/journal.jsonl" "$bin" --config "$cfg" restart --serial "$1" >/dev/null
    python3 -c "import time; print(f'{time.time() - $s:.3f}')"
}
serial1=$(run 1)
all=$(run '100%')
first="$(head -n1 "$W/hosts" | cut -d' ' -f1)"
read -r connect seq _ < <(target/release/examples/ssh_bench "ssh://$USER_@127.0.0.1:$first" "$SD/client_ed25519" "$SD/known_hosts" 100)
echo "restart of $n real sshd hosts (stand-in systemctl, a Python service each):"
printf '  %-48s %7.3f s\n' "spec procedure (ssh + curl loop, host by host)" "$spec"
printf '  %-48s %7.3f s\n' "agentlab-ops restart --serial 1" "$serial1"
printf '  %-48s %7.3f s\n' "agentlab-ops restart --serial 100%" "$all"
python3 -c "print(f'  ratios: spec/serial-1 {$spec/$serial1:.2f}x, spec/one-wave {$spec/$all:.2f}x')"
python3 -c "print(f'  per command on a reused SSH session: {$seq*1000/100:.2f} ms (+ {$connect*1000:.0f} ms to connect once)')"
