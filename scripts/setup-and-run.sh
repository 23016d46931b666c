#!/usr/bin/env bash
# Install what berth needs, build it, and run the main job: a busybox container from the
# locally built busybox fixture (no internet). Usage (as root): scripts/setup-and-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace --bins --quiet
BIN=target/release
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$BIN/berth-fixtures" bundle "$WORK/bundle" echo "hello from a berth container" >/dev/null
"$BIN/berth-runtime" --root "$WORK/state" run --bundle "$WORK/bundle" "demo-$$"
