#!/usr/bin/env bash
# The load generator side by side with wrk and ab, in one run, against a loopback nginx with one
# worker (access log off, a 2-byte file):
#   1. keep-alive, c=50, 10 s: requests per client CPU-second — ours (closed loop, until the
#      duration ends) vs `wrk -t1 -c50 -d10s` vs `ab -k -c 50 -t 10`
#   2. no keep-alive, the spec's `ab -n 10000 -c 50`: ours with --keep-alive false vs ab
# Client CPU is user+sys of the client process (/usr/bin/time). Needs wrk, ab and nginx
# (apt-get install -y wrk apache2-utils nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in wrk ab nginx; do command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y wrk apache2-utils nginx-light" >&2; exit 2; }; done
cargo build -q --release -p agentlab-ops-cli --no-default-features  # the cloud SDKs play no part here
BIN="$PWD/target/release/agentlab-ops"
W="$(mktemp -d /tmp/alload.XXXXXX)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$W/www" && printf ok > "$W/www/index.html"
cat > "$W/nginx.conf" <<CONF
worker_processes 1; daemon on; pid $W/nginx.pid; error_log $W/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT; root $W/www; } }
CONF
nginx -c "$W/nginx.conf"
trap 'kill "$(cat "$W/nginx.pid")" 2>/dev/null; rm -rf "$W"' EXIT
URL="http://127.0.0.1:$PORT/index.html"
printf 'environment = "bench"\n[service]\nbase_url = "http://127.0.0.1:%s"\n[journal]\ndisabled = true\n[load]\nmax_requests = 100000000\n' "$PORT" > "$W/agentlab-ops.toml"

# "requests cpu_seconds wall_seconds" of a client command: its own count parser is $1.
run() {
    local parse="$1"; shift
    /usr/bin/time -f '%U %S %e' -o "$W/time" "$@" > "$W/out" 2>&1 || true
    local n; n=$($parse "$W/out")
    read -r u s e < "$W/time"
    python3 -c "import sys; n,u,s,e=map(float,sys.argv[1:]); print(int(n), round(u+s,3), e, round(n/max(u+s,1e-9)), round(n/e))" "$n" "$u" "$s" "$e"
}
ours_n() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["payload"]["summary"]["requests"])' "$1"; }
wrk_n() { awk '/requests in/ {print $1}' "$1"; }
ab_n() { awk '/Complete requests:/ {print $3}' "$1"; }

echo "== keep-alive, c=50, 10 s  (requests, client cpu s, wall s, requests/cpu-s, requests/s)"
O=$(cd "$W" && run ours_n "$BIN" --format json load "$URL" -c 50 --duration 10s)
K=$(run wrk_n wrk -t1 -c50 -d10s "$URL")
A=$(run ab_n ab -q -k -c 50 -t 10 -n 100000000 "$URL")
echo "agentlab-ops  $O"; echo "wrk -t1       $K"; echo "ab -k         $A"
python3 - "$O" "$K" "$A" <<'PY'
import sys
o, k, a = (float(x.split()[3]) for x in sys.argv[1:])
print(f"requests per client CPU-second: {o/k:.2f}x wrk -t1, {o/a:.2f}x ab -k")
PY
echo "== no keep-alive, the spec's ab -n 10000 -c 50"
O=$(cd "$W" && run ours_n "$BIN" --format json load "$URL" -n 10000 -c 50 --keep-alive false)
A=$(run ab_n ab -q -n 10000 -c 50 "$URL")
echo "agentlab-ops  $O"; echo "ab            $A"
python3 - "$O" "$A" <<'PY'
import sys
o, a = (x.split() for x in sys.argv[1:])
print(f"requests per client CPU-second: {float(o[3])/float(a[3]):.2f}x ab; wall rate {float(o[4])/float(a[4]):.2f}x ab")
PY
