#!/usr/bin/env bash
# The load generator side by side with wrk and ab, in one run, against a loopback nginx with one
# worker (access log off, a 2-byte file):
#   1. keep-alive, c=50, 10 s: requests per client CPU-second — ours (closed loop, until the
#      duration ends) vs `wrk -t1 -c50 -d10s` vs `ab -k -c 50 -t 10`
#   2. no keep-alive, the spec's `ab -n 10000 -c 50`: ours with --keep-alive false vs ab
#   3. coordinated omission: a server (benches/stall_server.py) that stalls 200 ms every 3 s,
#      loaded open loop at 2000/s by us (p99 from each request's intended start) and closed
#      loop by wrk and by us (p99 from the send), against the p99 the schedule implies
#   4. memory: peak RSS of a 10 s and a 60 s run (LONG=1: and 5 min)
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
printf 'environment = "bench"\n[service]\nbase_url = "http://127.0.0.1:%s"\n[journal]\ndisabled = true\n[investigation]\nmetrics_path = ""\n[load]\nmax_requests = 100000000\n' "$PORT" > "$W/agentlab-ops.toml"

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

echo "== coordinated omission: 200 ms stall every 3 s, 10 s"
SP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 benches/stall_server.py "$SP" 0.2 3 > "$W/stall.log" 2>&1 &
STALL_PID=$!
trap 'kill "$(cat "$W/nginx.pid")" "$STALL_PID" 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 50); do grep -q ready "$W/stall.log" && break; sleep 0.1; done
SURL="http://127.0.0.1:$SP/"
(cd "$W" && "$BIN" --format json load "$SURL" --rate 2000 --duration 10s -c 50) > "$W/open.json" || true
(cd "$W" && "$BIN" --format json load "$SURL" -c 50 --duration 10s) > "$W/closed.json" || true
wrk -t1 -c50 -d10s --latency "$SURL" > "$W/wrk.txt" 2>&1 || true
python3 - "$W/open.json" "$W/closed.json" "$W/wrk.txt" <<'PY'
import json, re, sys
o = json.load(open(sys.argv[1]))["payload"]["summary"]
c = json.load(open(sys.argv[2]))["payload"]["summary"]
w = open(sys.argv[3]).read()
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", w)
wp99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
# Requests that arrive during a stall of S wait out its rest: P(extra > x) = (S/P)(1 - x/S).
S, P = 200.0, 3000.0
truth = S * (1 - 0.01 * P / S)
print(f"truth from the schedule: p99 ~{truth:.0f} ms (+ the server's own latency)")
print(f"agentlab-ops open loop 2000/s: p99 {o['latency_ms']['p99']:.1f} ms corrected, {o['raw_latency_ms']['p99']:.1f} ms from the send; achieved {o['achieved_rate']:.0f}/s, late {o['late']}")
print(f"agentlab-ops closed loop c=50: p99 {c['latency_ms']['p99']:.1f} ms, {c['achieved_rate']:.0f}/s")
r = re.search(r"Requests/sec:\s+([\d.]+)", w)
print(f"wrk -t1 -c50 (closed loop):     p99 {wp99:.1f} ms, {r.group(1) if r else '?'}/s")
PY

echo "== memory: peak RSS (KiB) of a keep-alive run, c=50"
for d in 10s 60s ${LONG:+300s}; do
    (cd "$W" && /usr/bin/time -f "%M" -o "$W/rss" "$BIN" --format json load "$URL" -c 50 --duration "$d" > /dev/null 2>&1) || true
    echo "$d: $(cat "$W/rss") KiB"
done
