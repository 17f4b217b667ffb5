#!/usr/bin/env bash
# N commands (default 100) on one SSH host, side by side against the same local sshd:
# a plain `ssh` loop (a new connection per command, what the runbooks did), agentlab-ops'
# SshHost sequentially (one multiplexed connection), and SshHost fanned out 10 at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
./scripts/setup-test-deps.sh
cargo build -q --release --example ssh_bench
# shellcheck source=scripts/test-servers.sh
source scripts/test-servers.sh
trap stop_test_servers EXIT
start_test_servers >/dev/null
PORT="${AGENTLAB_TEST_SSH_PORTS%% *}"
KEY="$AGENTLAB_TEST_SSH_DIR/client_ed25519"
KH="$AGENTLAB_TEST_SSH_DIR/known_hosts"
USER_="$AGENTLAB_TEST_SSH_USER"

start=$(date +%s.%N)
for _ in $(seq "$N"); do
    ssh -F /dev/null -p "$PORT" -i "$KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$KH" \
        -o StrictHostKeyChecking=yes -o BatchMode=yes "$USER_@127.0.0.1" true
done
plain=$(python3 -c "import time; print(f'{time.time() - $start:.3f}')")
read -r connect seq fan < <(target/release/examples/ssh_bench "ssh://$USER_@127.0.0.1:$PORT" "$KEY" "$KH" "$N")
echo "$N commands (\`true\`) on one host over SSH (sshd on 127.0.0.1):"
printf '  %-36s %7.3f s  %6.1f ms/command\n' "plain ssh loop" "$plain" "$(python3 -c "print($plain*1000/$N)")"
printf '  %-36s %7.3f s  %6.1f ms/command  (+ %.0f ms to connect)\n' "SshHost, sequential" "$seq" "$(python3 -c "print($seq*1000/$N)")" "$(python3 -c "print($connect*1000)")"
printf '  %-36s %7.3f s  %6.1f ms/command\n' "SshHost, fan-out 10" "$fan" "$(python3 -c "print($fan*1000/$N)")"
python3 -c "print(f'  ratios: plain/sequential {$plain/$seq:.1f}x, plain/fan-out {$plain/$fan:.1f}x')"
