#!/usr/bin/env bash
# Install what berth needs, build it, start berthd (left running) and run the main job:
# a busybox container from the locally built busybox image, through the Docker API
# (no internet). Usage (as root): scripts/setup-and-run.sh
#   BERTH_SOCK (default /run/berth/berth.sock), BERTH_DATA (default /var/lib/berth).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace --bins --quiet
BIN=$PWD/target/release
SOCK=${BERTH_SOCK:-/run/berth/berth.sock}
DATA=${BERTH_DATA:-/var/lib/berth}
EXEC=$(dirname "$SOCK")
export DOCKER_HOST=unix://$SOCK BERTH_HOST=unix://$SOCK
if ! curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null 2>&1; then
  mkdir -p "$EXEC" "$DATA"
  nohup "$BIN/berthd" -H "unix://$SOCK" --data-root "$DATA" --exec-root "$EXEC" \
    --shim-binary "$BIN/berth-shim" >"$EXEC/berthd.log" 2>&1 &
  for _ in $(seq 100); do
    curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
echo "berthd is running on $SOCK (log: $EXEC/berthd.log)"
IMAGE_TAR=$("$BIN/berth-fixtures" image-archive)
if [ -x "$BIN/berth" ] && "$BIN/berth" version >/dev/null 2>&1; then CLI="$BIN/berth"; else CLI=docker; fi
"$CLI" load -i "$IMAGE_TAR"
"$CLI" run --rm busybox echo "hello from a berth container"
