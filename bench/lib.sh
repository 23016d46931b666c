# shellcheck shell=bash
# Shared setup for bench/run and every bench/<name> script: sourced, never run.
#
# One private world per run under a temp dir $BT: dockerd (+ the containerd it supervises) on its
# own socket, data root, exec root and bridge; podman with its own root, runroot, tmpdir, network
# config dir and network; a loopback docker-registry; berthd when berth's pieces are built. Nothing
# here touches the system's default sockets or data roots, and `bench_down` (run from a trap on
# exit, error and ctrl-c) removes every container, mount, netns, bridge, firewall rule and process
# this run created, then reports any difference left in the firewall.
#
# bench/run calls `bench_up` once for all benchmarks and exports BENCH_STATE; a benchmark run alone
# calls `bench_attach ENGINES...`, which starts only what it needs and tears it down on exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BENCH_CACHE=${BENCH_CACHE:-$REPO/target/bench-cache}
BENCH_RUNS=${BENCH_RUNS:-20}
BENCH_WARMUP=${BENCH_WARMUP:-3}
# Debian's docker.io: dockerd 20.10 and its matching client. /usr/local/bin/docker (v28) is left alone.
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
PODMAN=${PODMAN:-/usr/bin/podman}
# berth's binaries: release build of this checkout unless told otherwise.
BERTH_BIN_DIR=${BERTH_BIN_DIR:-$REPO/target/release}
# Private bridges and subnets (Docker's own 172.17/16 and other helpers' berth0 stay untouched).
BENCH_DOCKER_BRIDGE=bbdock0
BENCH_DOCKER_CIDR=10.213.0.1/24
BENCH_PODMAN_BRIDGE=bbpod0
BENCH_PODMAN_SUBNET=10.214.0.0/24
BENCH_BERTH_BIP=10.215.0.1/24
BENCH_BERTH_BRIDGE=bbberth0
export BENCH_DIR REPO BENCH_RESULTS BENCH_CACHE BENCH_RUNS BENCH_WARMUP DOCKER_CLI DOCKERD PODMAN BERTH_BIN_DIR
PY=python3

blog() { echo "bench: $*" >&2; }
bdie() { echo "bench: error: $*" >&2; exit 1; }

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- install
# apt-get only what is missing; services never start (policy-rc.d or not, we start nothing here).
bench_install() {
  local want=() pkg bin
  for pair in docker.io:/usr/sbin/dockerd docker.io:/usr/bin/docker podman:/usr/bin/podman \
              conmon:/usr/bin/conmon runc:/usr/sbin/runc crun:/usr/bin/crun \
              docker-registry:/usr/bin/docker-registry skopeo:/usr/bin/skopeo \
              debootstrap:/usr/sbin/debootstrap curl:/usr/bin/curl busybox-static:/bin/busybox \
              iptables:/usr/sbin/iptables-save nftables:/usr/sbin/nft \
              containernetworking-plugins:/usr/lib/cni/bridge; do
    pkg=${pair%%:*}; bin=${pair#*:}
    [ -e "$bin" ] || want+=("$pkg")
  done
  [ ${#want[@]} -eq 0 ] && return 0
  # shellcheck disable=SC2207
  want=($(printf '%s\n' "${want[@]}" | sort -u))
  blog "installing from Debian: ${want[*]}"
  # Keep docker.io/podman services from starting on install (no systemd here, but be sure).
  local prc=/usr/sbin/policy-rc.d made_prc=0
  if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' > $prc; chmod +x $prc; made_prc=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >&2; }
  [ $made_prc = 1 ] && rm -f $prc
  return 0
}

# ---------------------------------------------------------------- firewall snapshots
fw_snapshot() { # DIR: iptables/ip6tables rules and the nft ruleset, for the before/after diff
  local d=$1; mkdir -p "$d"
  for t in filter nat mangle raw; do
    iptables -w -t $t -S 2>/dev/null | sort > "$d/ip4-$t" || true
    ip6tables -w -t $t -S 2>/dev/null | sort > "$d/ip6-$t" || true
  done
  nft list tables 2>/dev/null | sort > "$d/nft-tables" || true
  nft list ruleset 2>/dev/null > "$d/nft-ruleset" || true
}

# Remove what dockerd/netavark added and left (Docker keeps its chains after a clean stop). Only
# rules/chains absent from the "before" snapshot and naming Docker's or netavark's chains or our
# private bridges/subnets are removed, so other users' concurrent rules are never touched.
fw_revert() { # BEFORE_DIR
  local b=$1 fam t line chain pat
  pat="DOCKER|NETAVARK|CNI-|$BENCH_DOCKER_BRIDGE|$BENCH_PODMAN_BRIDGE|10\.213\.0\.|10\.214\.0\."
  # If another dockerd (not ours) still runs, it owns DOCKER* chains: leave those alone.
  if pgrep -x dockerd >/dev/null 2>&1; then pat="NETAVARK|CNI-|$BENCH_DOCKER_BRIDGE|$BENCH_PODMAN_BRIDGE|10\.213\.0\.|10\.214\.0\."; fi
  for fam in 4 6; do
    local ipt=iptables; [ $fam = 6 ] && ipt=ip6tables
    for t in filter nat mangle raw; do
      $ipt -w -t $t -S >/dev/null 2>&1 || continue
      # rules first (-A lines), then chains (-N), then policies (-P)
      $ipt -w -t $t -S 2>/dev/null | grep '^-A ' | grep -E -- "$pat" | while read -r line; do
        grep -qxF -- "$line" "$b/ip$fam-$t" 2>/dev/null && continue
        # shellcheck disable=SC2086
        eval "$ipt -w -t $t -D ${line#-A }" 2>/dev/null || true
      done
      $ipt -w -t $t -S 2>/dev/null | grep '^-N ' | grep -E -- "$pat" | while read -r line; do
        grep -qxF -- "$line" "$b/ip$fam-$t" 2>/dev/null && continue
        chain=${line#-N }
        $ipt -w -t $t -F "$chain" 2>/dev/null || true
      done
      $ipt -w -t $t -S 2>/dev/null | grep '^-N ' | grep -E -- "$pat" | while read -r line; do
        grep -qxF -- "$line" "$b/ip$fam-$t" 2>/dev/null && continue
        chain=${line#-N }
        $ipt -w -t $t -X "$chain" 2>/dev/null || true
      done
      # policies changed by dockerd (FORWARD DROP) go back to what they were
      if ! pgrep -x dockerd >/dev/null 2>&1; then
        grep '^-P ' "$b/ip$fam-$t" 2>/dev/null | while read -r line; do
          # shellcheck disable=SC2086
          $ipt -w -t $t ${line} 2>/dev/null || true
        done
      fi
    done
  done
  # berthd leaves its table (like dockerd its chains) when it stops: ours if it was not there
  # before and no other berthd runs now.
  if ! grep -qx "table inet berth" "$b/nft-tables" 2>/dev/null && ! pgrep -x berthd >/dev/null; then
    nft delete table inet berth 2>/dev/null || true
  fi
  # Tables that did not exist before and are now empty (iptables-nft creates ip filter/nat):
  # delete them, but only if they hold nothing but empty base chains with policy accept.
  nft list tables 2>/dev/null | while read -r _ fam t; do
    grep -qx "table $fam $t" "$b/nft-tables" 2>/dev/null && continue
    case "$fam $t" in
      "ip filter"|"ip nat"|"ip6 filter"|"ip6 nat"|"ip mangle"|"ip6 mangle"|"ip raw"|"ip6 raw") ;;
      *) continue ;;
    esac
    if ! nft list table "$fam" "$t" 2>/dev/null | grep -vE '^\s*(table|chain|type|\}|$)' | grep -q .; then
      if ! nft list table "$fam" "$t" | grep -q 'policy drop'; then nft delete table "$fam" "$t" 2>/dev/null || true; fi
    fi
  done
}

fw_diff() { # BEFORE_DIR AFTER_DIR: print differences, return 0 if none
  local b=$1 a=$2 diffs=0 f
  for f in "$b"/ip4-* "$b"/ip6-* "$b"/nft-tables; do
    local n; n=$(basename "$f")
    if ! diff -q "$f" "$a/$n" >/dev/null 2>&1; then
      diffs=1; echo "firewall difference in $n:"; diff "$f" "$a/$n" | sed 's/^/    /' | head -40
    fi
  done
  return $diffs
}

# ---------------------------------------------------------------- engines
docker_cmd() { echo "$DOCKER_CLI -H unix://$BT/docker.sock"; }
podman_cmd() {
  echo "$PODMAN --root $BT/podman/root --runroot $BT/podman/run --tmpdir $BT/podman/tmp --cgroup-manager cgroupfs --events-backend file --network-config-dir $BT/podman/net"
}
berth_cmd() { echo "$BERTH_BIN_DIR/berth -H unix://$BT/berth.sock"; }
docker_berthd_cmd() { echo "$DOCKER_CLI -H unix://$BT/berth.sock"; }

wait_sock() { # SOCKET CLI SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if [ -S "$1" ] && $2 version >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

start_dockerd() {
  blog "starting dockerd $($DOCKERD --version | awk '{print $3}' | tr -d ,) on $BT/docker.sock"
  ip link add "$BENCH_DOCKER_BRIDGE" type bridge
  ip addr add "$BENCH_DOCKER_CIDR" dev "$BENCH_DOCKER_BRIDGE"
  ip link set "$BENCH_DOCKER_BRIDGE" up
  echo '{}' > "$BT/docker-daemon.json"
  # dockerd starts and supervises its own containerd (root under --data-root, socket and state
  # under --exec-root), so containerd is as private as dockerd.
  "$DOCKERD" -H "unix://$BT/docker.sock" --data-root "$BT/docker" --exec-root "$BT/de" \
    --pidfile "$BT/docker.pid" --config-file "$BT/docker-daemon.json" \
    --bridge "$BENCH_DOCKER_BRIDGE" --storage-driver overlay2 --log-level warn \
    --cgroup-parent /bbench-docker >"$BT/dockerd.log" 2>&1 &
  echo $! > "$BT/dockerd.launcher-pid"
  wait_sock "$BT/docker.sock" "$(docker_cmd)" 60 || { tail -20 "$BT/dockerd.log" >&2; bdie "dockerd did not come up"; }
  echo "HAVE_DOCKER=1" >> "$BT/state.env"
}

stop_dockerd() {
  [ -f "$BT/docker.pid" ] || [ -f "$BT/dockerd.launcher-pid" ] || return 0
  local D pid i
  D=$(docker_cmd)
  if [ -S "$BT/docker.sock" ]; then
    # shellcheck disable=SC2046
    ids=$($D ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && echo "$ids" | xargs -r -n 200 $D rm -f >/dev/null 2>&1 || true
  fi
  pid=$(cat "$BT/docker.pid" 2>/dev/null || cat "$BT/dockerd.launcher-pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { blog "dockerd $pid ignored SIGTERM for 30 s: SIGKILL"; kill -KILL "$pid"; }
  fi
  rm -f "$BT/docker.pid" "$BT/dockerd.launcher-pid"
}

start_podman() {
  blog "preparing podman $($PODMAN --version | awk '{print $3}') under $BT/podman"
  mkdir -p "$BT/podman/root" "$BT/podman/run" "$BT/podman/tmp" "$BT/podman/net"
  cat > "$BT/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$BT/podman/run"
graphroot = "$BT/podman/root"
EOF
  # nofile/nproc: podman asks for 1048576 and more by default, which this machine's hard limits
  # refuse (no CAP_SYS_RESOURCE); the hard limits are what docker's containers inherit here.
  # podman runs with its own nproc hard limit at pid_max (observed: 32768), so cap it there.
  local hn hu pm; hn=$(ulimit -Hn); hu=$(ulimit -Hu); pm=$(cat /proc/sys/kernel/pid_max)
  [ "$hu" = unlimited ] || [ "$hu" -gt "$pm" ] && hu=$pm
  cat > "$BT/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$BT/podman/tmp"
volume_path = "$BT/podman/root/volumes"
static_dir = "$BT/podman/root/libpod"
[network]
network_backend = "netavark"
network_config_dir = "$BT/podman/net"
default_network = "benchpod"
EOF
  export CONTAINERS_STORAGE_CONF=$BT/podman/storage.conf CONTAINERS_CONF=$BT/podman/containers.conf
  local P; P=$(podman_cmd)
  # Like podman's own default network (a bridge without DNS, so no aardvark-dns), on our own
  # bridge name: podman 4.3 has no --interface-name, so the netavark config is written directly.
  local gw=${BENCH_PODMAN_SUBNET%.0/*}.1
  cat > "$BT/podman/net/benchpod.json" <<EOF
{"name": "benchpod", "id": "$(echo benchpod | sha256sum | cut -c1-64)",
 "driver": "bridge", "network_interface": "$BENCH_PODMAN_BRIDGE", "created": "2026-01-01T00:00:00Z",
 "subnets": [{"subnet": "$BENCH_PODMAN_SUBNET", "gateway": "$gw"}],
 "ipv6_enabled": false, "internal": false, "dns_enabled": false, "ipam_options": {"driver": "host-local"}}
EOF
  $P network inspect benchpod >/dev/null || bdie "podman does not accept the benchpod network"
  {
    echo "export CONTAINERS_STORAGE_CONF=$BT/podman/storage.conf CONTAINERS_CONF=$BT/podman/containers.conf"
    echo "HAVE_PODMAN=1"
  } >> "$BT/state.env"
}

stop_podman() {
  [ -d "$BT/podman" ] || return 0
  export CONTAINERS_STORAGE_CONF=$BT/podman/storage.conf CONTAINERS_CONF=$BT/podman/containers.conf
  local P; P=$(podman_cmd)
  $P rm -af -t 0 >/dev/null 2>&1 || true
  $P pod rm -af >/dev/null 2>&1 || true
  $P network rm -f benchpod >/dev/null 2>&1 || true
  # conmon processes of this root, if any survived
  kill_matching "$BT/podman"
}

start_registry() {
  local port; port=$(free_port)
  mkdir -p "$BT/registry"
  cat > "$BT/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $BT/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$BT/registry.yml" >"$BT/registry.log" 2>&1 &
  echo $! > "$BT/registry.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || bdie "docker-registry did not come up (see $BT/registry.log)"
  blog "registry on 127.0.0.1:$port"
  echo "REGISTRY=127.0.0.1:$port" >> "$BT/state.env"
  REGISTRY=127.0.0.1:$port
}

stop_registry() {
  [ -f "$BT/registry.pid" ] || return 0
  local pid; pid=$(cat "$BT/registry.pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$BT/registry.pid"
}

# berth: built from this checkout when its crates exist; any missing piece is reported, not fatal.
berth_probe() {
  BERTH_MISSING=""
  local need=()
  [ -x "$BERTH_BIN_DIR/berthd" ] || need+=("berthd")
  [ -x "$BERTH_BIN_DIR/berth-shim" ] || need+=("berth-shim")
  [ -x "$BERTH_BIN_DIR/berth-runtime" ] || need+=("berth-runtime")
  [ ${#need[@]} -eq 0 ] || BERTH_MISSING="needs ${need[*]} in $BERTH_BIN_DIR"
}

build_berth() {
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && return 0
  local pkgs=()
  for c in runtime:berth-runtime shim:berth-shim daemon:berth-daemon cli:berth-cli; do
    [ -f "$REPO/crates/${c%%:*}/Cargo.toml" ] && pkgs+=(-p "${c#*:}")
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  [ "$BERTH_BIN_DIR" = "$REPO/target/release" ] || return 0
  blog "building berth (release): ${pkgs[*]}"
  (cd "$REPO" && cargo build --release -q "${pkgs[@]}") >&2 || blog "berth release build failed: berth figures will be missing"
}

start_berthd() {
  berth_probe
  if [ -n "$BERTH_MISSING" ]; then
    echo "HAVE_BERTHD=0" >> "$BT/state.env"
    printf 'BERTH_MISSING=%q\n' "$BERTH_MISSING" >> "$BT/state.env"
    blog "berth: not available yet ($BERTH_MISSING)"
    return 0
  fi
  mkdir -p "$BT/berth" "$BT/be"
  echo '{}' > "$BT/berth-daemon.json"
  blog "starting berthd on $BT/berth.sock"
  "$BERTH_BIN_DIR/berthd" -H "unix://$BT/berth.sock" --data-root "$BT/berth" --exec-root "$BT/be" \
    --pidfile "$BT/berthd.pid" --config-file "$BT/berth-daemon.json" --bip "$BENCH_BERTH_BIP" --bridge "$BENCH_BERTH_BRIDGE" \
    --shim-binary "$BERTH_BIN_DIR/berth-shim" --log-level warn \
    ${REGISTRY:+--insecure-registry "$REGISTRY"} ${BERTHD_ARGS:-} >"$BT/berthd.log" 2>&1 &
  echo $! > "$BT/berthd.launcher-pid"
  if wait_sock "$BT/berth.sock" "$(docker_berthd_cmd)" 30; then
    echo "HAVE_BERTHD=1" >> "$BT/state.env"
    if [ -x "$BERTH_BIN_DIR/berth" ] && "$BERTH_BIN_DIR/berth" -H "unix://$BT/berth.sock" version >/dev/null 2>&1; then
      echo "HAVE_BERTH_CLI=1" >> "$BT/state.env"
    else
      echo "HAVE_BERTH_CLI=0" >> "$BT/state.env"
      printf 'BERTH_CLI_MISSING=%q\n' "needs the berth CLI (berth version against berthd fails)" >> "$BT/state.env"
    fi
  else
    echo "HAVE_BERTHD=0" >> "$BT/state.env"
    printf 'BERTH_MISSING=%q\n' "needs berthd to start and answer /version (see berthd.log: $(tail -1 "$BT/berthd.log" 2>/dev/null))" >> "$BT/state.env"
    blog "berthd did not come up: $(tail -3 "$BT/berthd.log" 2>/dev/null)"
  fi
}

stop_berthd() {
  [ -f "$BT/berthd.launcher-pid" ] || return 0
  local pid i
  if [ -S "$BT/berth.sock" ]; then
    local D; D=$(docker_berthd_cmd)
    ids=$($D ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && echo "$ids" | xargs -r -n 200 $D rm -f >/dev/null 2>&1 || true
  fi
  pid=$(cat "$BT/berthd.pid" 2>/dev/null || cat "$BT/berthd.launcher-pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  # shims outlive berthd by design: ours are the ones naming our exec root
  kill_matching "$BT/be"
  rm -f "$BT/berthd.launcher-pid"
}

# Pids whose command line names PATH (shims/conmon of this run), never this script or its parents.
pids_matching() {
  BENCH_PAT=$1 $PY "$BENCH_DIR/procs.py" match
}

# Kill processes whose command line names PATH, each by its pid.
kill_matching() {
  local pid
  for pid in $(pids_matching "$1"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- images
# The busybox fixture (`docker save` tar from berth-fixtures) and the ~110 MB two-layer Debian image.
busybox_archive() {
  local bin="$REPO/target/release/berth-fixtures"
  if [ ! -x "$bin" ]; then
    blog "building berth-fixtures (release)"
    (cd "$REPO" && cargo build --release -q -p berth-fixtures) >&2
  fi
  "$bin" image-archive
}

load_images() { # into every running engine: busybox everywhere; deb110 pushed to the registry
  local bb; bb=$(busybox_archive)
  echo "BUSYBOX_TAR=$bb" >> "$BT/state.env"
  [ "${HAVE_DOCKER:-0}" = 1 ] && $(docker_cmd) load -q -i "$bb" >/dev/null
  if [ "${HAVE_PODMAN:-0}" = 1 ]; then
    $(podman_cmd) load -q -i "$bb" >/dev/null
    # crun 1.8.1 refuses to run anything on a cgroup v1 hybrid host once a controller is enabled
    # in the cgroup2 root's subtree_control ("cgroups in hybrid mode not supported"); then
    # podman runs with runc, and the results say so.
    local err
    if ! err=$($(podman_cmd) run --rm --network none busybox true 2>&1); then
      if echo "$err" | grep -q "hybrid mode not supported"; then
        blog "WARNING: crun refuses this host ($(cat /sys/fs/cgroup/unified/cgroup.subtree_control 2>/dev/null) enabled in /sys/fs/cgroup/unified/cgroup.subtree_control): podman uses runc"
        sed -i 's/^\[engine\]$/[engine]\nruntime = "runc"/' "$BT/podman/containers.conf"
        echo "PODMAN_RUNTIME=runc" >> "$BT/state.env"
        $(podman_cmd) run --rm --network none busybox true >/dev/null || bdie "podman cannot run busybox"
      else
        bdie "podman cannot run busybox: $err"
      fi
    else
      echo "PODMAN_RUNTIME=crun" >> "$BT/state.env"
    fi
  fi
  if [ "${HAVE_BERTHD:-0}" = 1 ]; then
    if ! $(docker_berthd_cmd) load -q -i "$bb" >/dev/null 2>"$BT/berth-load.err"; then
      echo "HAVE_BERTHD=0" >> "$BT/state.env"
      printf 'BERTH_MISSING=%q\n' "needs image load in berthd: $(tail -1 "$BT/berth-load.err")" >> "$BT/state.env"
    fi
  fi
  if [ -n "${REGISTRY:-}" ]; then
    local deb; deb=$("$BENCH_DIR/mkimage" deb110)
    echo "DEB_TAR=$deb" >> "$BT/state.env"
    blog "pushing $(du -m "$deb" | cut -f1) MB image to $REGISTRY/bench/deb110:latest"
    skopeo copy -q --dest-tls-verify=false "docker-archive:$deb" "docker://$REGISTRY/bench/deb110:latest" >&2
  fi
}

# ---------------------------------------------------------------- lifecycle
bench_up() { # COMPONENTS: docker podman berth registry (default: all)
  local want=("$@")
  [ ${#want[@]} -eq 0 ] && want=(docker podman berth registry)
  [ "$(id -u)" = 0 ] || bdie "run as root"
  bench_install
  BT=$(mktemp -d /tmp/bbench.XXXXXX)
  export BT
  : > "$BT/state.env"
  echo "BT=$BT" >> "$BT/state.env"
  fw_snapshot "$BT/fw-before"
  for d in /etc/docker /run/containerd /run/docker /var/lib/docker /var/lib/containers /run/containers /run/libpod \
           /sys/fs/cgroup/memory/docker /sys/fs/cgroup/memory/libpod_parent /sys/fs/cgroup/memory/bbench-docker \
           /sys/fs/cgroup/memory/berth \
           /etc/cni/net.d /run/netns /var/lib/cni; do
    [ -e "$d" ] && echo "$d" >> "$BT/preexisting"
  done
  touch "$BT/preexisting"
  ls /etc/docker 2>/dev/null | sed 's|^|/etc/docker/|' >> "$BT/preexisting" || true
  trap 'bench_down; exit 130' INT TERM
  trap 'rc=$?; bench_down; exit $rc' EXIT
  local c
  for c in "${want[@]}"; do
    case $c in
      berth) build_berth ;;
    esac
  done
  # the registry first: berthd is told its address as an insecure registry
  for c in registry docker podman berth; do
    case " ${want[*]} " in *" $c "*) ;; *) continue ;; esac
    case $c in
      docker) start_dockerd ;;
      podman) start_podman ;;
      berth) start_berthd ;;
      registry) start_registry ;;
    esac
  done
  # shellcheck disable=SC1091
  source "$BT/state.env"
  load_images
  # shellcheck disable=SC1091
  source "$BT/state.env"
  export BENCH_STATE=$BT/state.env BENCH_OWNER=$$
  export_cmds
}

# The engines' command lines, for the Python helpers.
export_cmds() {
  D_CMD=$(docker_cmd); P_CMD=$(podman_cmd); B_CMD=$(berth_cmd); DB_CMD=$(docker_berthd_cmd)
  export BT D_CMD P_CMD B_CMD DB_CMD HAVE_DOCKER HAVE_PODMAN HAVE_BERTHD HAVE_BERTH_CLI \
    BERTH_MISSING BERTH_CLI_MISSING REGISTRY BUSYBOX_TAR DEB_TAR PODMAN_RUNTIME
}

berth_reason() { # why berth's CLI (cli) or berthd (daemon) cannot be measured
  if [ "${HAVE_BERTHD:-0}" != 1 ]; then echo "${BERTH_MISSING:-needs berthd}"
  elif [ "$1" = cli ]; then echo "${BERTH_CLI_MISSING:-needs the berth CLI}"
  fi
}

# alternate.py arguments for the four engines running `CLI SUFFIX`; berth targets optional.
# Sets the array ALT.
alt_engines() { # SUFFIX [BERTH_CLI_TARGET_MS] [DOCKER_TO_BERTHD_TARGET_MS] [PODMAN_SUFFIX]
  local sfx=$1 psfx=${4:-$1}
  ALT=()
  [ -n "${2:-}" ] && ALT+=(--target berth "$2")
  [ -n "${3:-}" ] && ALT+=(--target "docker→berthd" "$3")
  if [ "${HAVE_BERTHD:-0}" = 1 ] && [ "${HAVE_BERTH_CLI:-0}" = 1 ]; then
    ALT+=(--cmd berth "$B_CMD $sfx" --optional berth)
  else
    ALT+=(--missing berth "not available yet ($(berth_reason cli))")
  fi
  if [ "${HAVE_BERTHD:-0}" = 1 ]; then
    ALT+=(--cmd "docker→berthd" "$DB_CMD $sfx" --optional "docker→berthd")
  else
    ALT+=(--missing "docker→berthd" "not available yet ($(berth_reason daemon))")
  fi
  [ "${HAVE_DOCKER:-0}" = 1 ] && ALT+=(--cmd docker "$D_CMD $sfx")
  [ "${HAVE_PODMAN:-0}" = 1 ] && ALT+=(--cmd podman "$P_CMD $psfx")
  return 0
}

bench_attach() { # ENGINES...: use bench/run's world, or bring up a private one for this script
  if [ -n "${BENCH_STATE:-}" ] && [ -f "$BENCH_STATE" ]; then
    # shellcheck disable=SC1090
    source "$BENCH_STATE"
    export_cmds
  else
    bench_up "$@"
  fi
}

bench_down() {
  [ -n "${BT:-}" ] && [ -d "$BT" ] || return 0
  [ "${BENCH_OWNER:-$$}" = $$ ] || return 0
  trap - EXIT INT TERM
  set +e
  blog "tearing down $BT"
  stop_berthd
  stop_dockerd
  stop_podman
  stop_registry
  kill_matching "$BT"
  # mounts under our temp dir (overlay rootfs, shm, netns files, data-root self-binds): deepest first
  local m
  for _ in 1 2 3; do
    awk -v t="$BT" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
  done
  # netns of our podman containers live in /run/netns (netavark): ours are gone with the
  # containers; report leftovers rather than guess whose they are.
  for br in "$BENCH_DOCKER_BRIDGE" "$BENCH_PODMAN_BRIDGE" "$BENCH_BERTH_BRIDGE"; do
    ip link show "$br" >/dev/null 2>&1 && ip link del "$br" 2>/dev/null
  done
  sleep 0.2
  fw_revert "$BT/fw-before"
  fw_snapshot "$BT/fw-after"
  local fwlog="$BENCH_RESULTS/teardown-firewall.txt"
  mkdir -p "$BENCH_RESULTS"
  if fw_diff "$BT/fw-before" "$BT/fw-after" > "$fwlog"; then
    echo "firewall: identical before/after (iptables -S all tables, nft tables)" > "$fwlog"
    blog "firewall: no difference left"
  else
    blog "firewall: DIFFERENCES left (see $fwlog):"; cat "$fwlog" >&2
  fi
  # cgroups our daemons made, if empty and new
  local h
  for h in /sys/fs/cgroup/*/; do
    for cg in bbench-docker libpod_parent docker berth; do
      [ -d "$h$cg" ] || continue
      grep -qx "/sys/fs/cgroup/memory/$cg" "$BT/preexisting" && continue
      find "$h$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  # dockerd 20.10 writes /etc/docker/key.json; drop what it created
  for f in /etc/docker/key.json /etc/docker; do
    grep -qx "$f" "$BT/preexisting" || { [ -d "$f" ] && rmdir "$f" 2>/dev/null; [ -f "$f" ] && rm -f "$f"; }
  done
  # podman/netavark keep their IPAM db in /run/containers/networks, and podman/skopeo their blob
  # info cache in /var/lib/containers/cache, whatever the roots: drop them if this run made them
  for d in /run/containers /var/lib/containers; do
    grep -qx "$d" "$BT/preexisting" || rm -rf "$d"
  done
  # netavark (and dockerd) create /run/netns for their namespaces: drop it if new and empty
  grep -qx /run/netns "$BT/preexisting" || rmdir /run/netns 2>/dev/null
  for d in /run/containerd /run/docker; do
    grep -qx "$d" "$BT/preexisting" || { [ -d "$d" ] && find "$d" -depth -type d -empty -delete 2>/dev/null; }
  done
  # leftovers report: processes and mounts that still name our dir
  local left
  left=$(pids_matching "$BT" | tr '\n' ' ')
  [ -n "$left" ] && blog "WARNING: processes still naming $BT: $left"
  if awk -v t="$BT" 'index($5, t) == 1' /proc/self/mountinfo | grep -q .; then
    blog "WARNING: mounts left under $BT"; awk -v t="$BT" 'index($5, t) == 1 {print "  " $5}' /proc/self/mountinfo >&2
  else
    rm -rf "$BT"
  fi
  BT=
}
