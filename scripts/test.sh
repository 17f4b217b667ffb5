#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate.
# Used as-is by CI (.ci/run) and documented in the README.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace
