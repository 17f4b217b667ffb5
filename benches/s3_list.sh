#!/usr/bin/env bash
# Listing N objects (default 100 000) under one prefix, side by side against the same S3 server
# (moto, on 127.0.0.1): agentlab-ops' S3BackupStore (streamed, paginated) vs boto3's
# list_objects_v2 paginator. Prints the best of RUNS (default 3), peak memory, and the ratio.
# Filling the bucket takes a few minutes: moto accepts roughly 300 PUTs per second.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
RUNS="${RUNS:-3}"

./scripts/setup-test-deps.sh
cargo build -q --release --example s3_list

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$(mktemp /tmp/agentlab-s3bench.XXXXXX)"
.venv-test/bin/moto_server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$LOG"' EXIT
EP="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do curl -sf -o /dev/null "$EP/moto-api/" && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

echo "== putting $N objects into s3://bench/sessions/20261129/ (moto: a few minutes)"
.venv-test/bin/python - "$EP" "$N" <<'PY'
import sys, boto3
from concurrent.futures import ThreadPoolExecutor
ep, n = sys.argv[1], int(sys.argv[2])
cfg = boto3.session.Config(s3={"addressing_style": "path"}, max_pool_connections=32)
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", config=cfg)
s3.create_bucket(Bucket="bench")
body = b'{"session_id": "x", "messages": []}\n'
def put(i):
    s3.put_object(Bucket="bench", Key=f"sessions/20261129/session-{i:07d}.json", Body=body)
with ThreadPoolExecutor(32) as ex:
    list(ex.map(put, range(n)))
PY

best() { sort -n | head -1; }
rust_times=(); rust_mem=""
for _ in $(seq "$RUNS"); do
    read -r count _bytes secs kb < <(target/release/examples/s3_list "$EP" bench sessions/20261129/)
    [ "$count" = "$N" ] || { echo "agentlab-ops listed $count of $N" >&2; exit 1; }
    rust_times+=("$secs"); rust_mem="$kb"
done
py_times=(); py_mem=""
for _ in $(seq "$RUNS"); do
    read -r count secs kb < <(.venv-test/bin/python - "$EP" <<'PY'
import resource, sys, time, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=boto3.session.Config(s3={"addressing_style": "path"}))
t = time.perf_counter()
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="sessions/20261129/"):
    n += len(page.get("Contents", []))
print(n, f"{time.perf_counter() - t:.3f}", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
PY
)
    [ "$count" = "$N" ] || { echo "boto3 listed $count of $N" >&2; exit 1; }
    py_times+=("$secs"); py_mem="$kb"
done
r="$(printf '%s\n' "${rust_times[@]}" | best)"
p="$(printf '%s\n' "${py_times[@]}" | best)"
echo "listing $N objects, best of $RUNS (moto on 127.0.0.1):"
printf '  %-28s %8.3f s  %7d objects/s  peak RSS %6d KiB\n' "agentlab-ops S3BackupStore" "$r" "$(python3 -c "print(int($N/$r))")" "$rust_mem"
printf '  %-28s %8.3f s  %7d objects/s  peak RSS %6d KiB\n' "boto3 paginator" "$p" "$(python3 -c "print(int($N/$p))")" "$py_mem"
python3 -c "print(f'  ratio boto3 / agentlab-ops: {$p/$r:.2f}x')"
