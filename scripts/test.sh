#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test of every crate, and the Python extension
# (built with maturin, tested with pytest, stubs checked by stubtest and mypy), with the real
# servers the backends are tested against (an S3-compatible server and sshd on 127.0.0.1)
# started first and torn down at the end, even when tests fail. Used as-is by CI.
#
# AGENTLAB_OPS_SKIP_REAL=1 skips starting the servers and the tests that need them (they say
# what they skipped) — for quick local runs only.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

./scripts/check-feature-sets.sh

echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

./scripts/setup-test-deps.sh
if [ "${AGENTLAB_OPS_SKIP_REAL:-}" != "1" ]; then
    # shellcheck source=scripts/test-servers.sh
    source scripts/test-servers.sh
    trap stop_test_servers EXIT
    start_test_servers
fi

echo "== cargo test"
cargo test --workspace

echo "== Python extension: maturin develop, pytest, stubtest"
(cd agentlab-ops-py && VIRTUAL_ENV="$PWD/../.venv-test" ../.venv-test/bin/maturin develop -q)
.venv-test/bin/python -m pytest -q agentlab-ops-py/tests
.venv-test/bin/python -m mypy.stubtest agentlab_ops
.venv-test/bin/python -m mypy --strict agentlab-ops-py/python/agentlab_ops agentlab-ops-py/tests

if [ "${AGENTLAB_OPS_SKIP_REAL:-}" != "1" ]; then
    # No ssh control master may outlive the tests.
    if pgrep -af 'ssh .*-M .*ssh-connection|mux\]' | grep -v pgrep; then
        echo "FAIL: ssh control master processes left behind" >&2
        exit 1
    fi
    echo "== no ssh control master left behind"
fi
