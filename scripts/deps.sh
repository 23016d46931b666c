#!/usr/bin/env bash
# Install the Debian packages berth's build, tests and benchmarks need (idempotent).
# Runs as root; only the package registries are reachable.
set -euo pipefail
PKGS=(curl busybox-static libseccomp-dev pkg-config nftables iproute2 docker-registry skopeo runc crun tmux hyperfine)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo missing (rustup toolchain expected)" >&2; exit 1; }
