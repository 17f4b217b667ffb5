#!/usr/bin/env bash
# Listing N objects (default 100 000) under one prefix, side by side on the same S3 server:
# agentlab-ops' S3BackupStore (streamed, paginated) vs boto3's list_objects_v2 paginator.
# The server is s3s-fs (a real S3 implementation serving a directory), so 100k objects are
# laid out as files in seconds instead of 100k PUTs. Prints times, peak memory and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
RUNS="${RUNS:-3}"

./scripts/setup-test-deps.sh
TOOLS=target/bench-tools
if ! [ -x "$TOOLS/bin/s3s-fs" ]; then
    echo "== installing s3s-fs (crates.io) into $TOOLS"
    cargo install -q s3s-fs --version 0.14.1 --features binary --root "$TOOLS"
fi
cargo build -q --release --example s3_list

D="$(mktemp -d /tmp/agentlab-s3bench.XXXXXX)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
mkdir -p "$D/bench/sessions/20261129"
python3 - "$D/bench/sessions/20261129" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
body = b'{"session_id": "x", "messages": []}\n'
for i in range(n):
    with open(os.path.join(d, f"session-{i:07d}.json"), "wb") as f:
        f.write(body)
PY
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$TOOLS/bin/s3s-fs" --host 127.0.0.1 --port "$PORT" --access-key testing --secret-key testing "$D" >"$D.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
EP="http://127.0.0.1:$PORT"

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
echo "listing $N objects, best of $RUNS (s3s-fs on 127.0.0.1):"
printf '  %-28s %8.3f s  %7d objects/s  peak RSS %6d KiB\n' "agentlab-ops S3BackupStore" "$r" "$(python3 -c "print(int($N/$r))")" "$rust_mem"
printf '  %-28s %8.3f s  %7d objects/s  peak RSS %6d KiB\n' "boto3 paginator" "$p" "$(python3 -c "print(int($N/$p))")" "$py_mem"
python3 -c "print(f'  ratio boto3 / agentlab-ops: {$p/$r:.2f}x')"
