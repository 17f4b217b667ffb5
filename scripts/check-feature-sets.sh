#!/usr/bin/env bash
# `maturin develop` builds agentlab-ops-py alone; `cargo test --workspace` builds everything. When
# the two resolve different features for a shared crate (say serde or hyper), every crate above it
# is compiled twice: the whole AWS stack again, ~7 minutes on 2 cores. agentlab-ops-py/Cargo.toml
# pins the workspace's features; this check fails, naming the crates, when they drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
features() { cargo tree "$@" -f '{p} {f}' --prefix none | sed 's/ (\*)//' \
    | awk '{print $1"@"$2, $3}' | sort -u; }
# Assigned first so that a failing `cargo tree` stops the script (set -e) instead of comparing nothing.
py=$(features -p agentlab-ops-py -e normal,build)
ws=$(features --workspace)
[ -n "$py" ] && [ -n "$ws" ] || { echo "FAIL: cargo tree printed no packages" >&2; exit 1; }
drift=$(join -j1 <(echo "$py") <(echo "$ws") \
    | awk '$2 != $3 {print "  " $1 ": python extension [" $2 "], workspace [" $3 "]"}')
if [ -n "$drift" ]; then
    echo "FAIL: agentlab-ops-py resolves other features than the workspace; add these to" >&2
    echo "agentlab-ops-py/Cargo.toml so maturin reuses the workspace's build:" >&2
    echo "$drift" >&2
    exit 1
fi
echo "== feature sets agree: maturin reuses the workspace's compiled dependencies"
