#!/usr/bin/env bash
# The whole test suite: lint gates, then every crate's unit and root-level kernel tests.
# Usage (as root): scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build binaries the tests drive"
cargo build --workspace --bins --quiet
echo "== tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --no-fail-fast --run-ignored default --retries 1
else
  cargo test --workspace --no-fail-fast
fi
