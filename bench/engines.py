"""The daemons of this run (from bench/lib.sh's exported state) as seen by the Python benchmarks:
their CLIs, their daemon processes and their per-container helper processes (shims/conmon)."""
import os
import shlex
import subprocess
import time

import procs


class Engine:
    """One container engine: label, CLI argv, how to find its daemon and per-container processes."""

    def __init__(self, label, cli, daemon, shim_comm, rm_args):
        self.label = label
        self.cli = shlex.split(cli)
        self.daemon = daemon          # callable -> {name: [pids]}
        self.shim_comm = shim_comm    # comm prefix of the per-container process
        self.rm_args = rm_args        # `rm` flags that kill at once

    def run(self, *args, check=True, timeout=600):
        r = subprocess.run(self.cli + list(args), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.label} {' '.join(args[:3])}...: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        return r

    def daemon_pids(self):
        return self.daemon()

    def shim_pids(self):
        return procs.pids(comm_prefix=self.shim_comm, cmdline_has=os.environ["BT"])

    def ids(self, all_=False):
        r = self.run("ps", "-q", *(["-a"] if all_ else []), "--no-trunc")
        return [x for x in r.stdout.split() if x]

    def rm_all(self):
        ids = self.ids(all_=True)
        for i in range(0, len(ids), 500):
            self.run("rm", *self.rm_args, *ids[i:i + 500], check=False, timeout=1800)
        return len(ids)


def _pidfile(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _docker_daemon():
    bt = os.environ["BT"]
    d = _pidfile(f"{bt}/docker.pid")
    if not d:
        return {}
    return {"dockerd": [d], "containerd": [p for p in procs.pids(parent=d) if procs.comm(p) == "containerd"]}


def _berth_daemon():
    d = _pidfile(f"{os.environ['BT']}/berthd.pid")
    return {"berthd": [d]} if d else {}


def available():
    """(engines, missing) for daemon-level benchmarks: berth (through berthd, with the berth CLI
    when it works, else the docker CLI), docker, podman."""
    env = os.environ
    engines, missing = [], []
    if env.get("HAVE_BERTHD") == "1":
        cli = env["B_CMD"] if env.get("HAVE_BERTH_CLI") == "1" else env["DB_CMD"]
        engines.append(Engine("berth", cli, _berth_daemon, "berth-shim", ["-f"]))
    else:
        missing.append(("berth", f"not available yet ({env.get('BERTH_MISSING') or 'needs berthd'})"))
    if env.get("HAVE_DOCKER") == "1":
        engines.append(Engine("docker", env["D_CMD"], _docker_daemon, "containerd-shim", ["-f"]))
    if env.get("HAVE_PODMAN") == "1":
        # podman rm -f would send SIGTERM and wait 10 s (sleep as pid 1 ignores it): -t 0 kills.
        engines.append(Engine("podman", env["P_CMD"], lambda: {}, "conmon", ["-f", "-t", "0"]))
    return engines, missing


def wait_running(engine, n, timeout=900):
    """Seconds until `ps -q` lists n running containers (None on timeout)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if len(engine.ids()) >= n:
            return time.perf_counter() - t0
        time.sleep(0.2)
    return None


def start_many(engine, n, network="none", workers=4, name_prefix="bbench", deadline=None):
    """Start n `busybox sleep` containers through `workers` concurrent CLIs; no new start after
    `deadline` (a time.perf_counter() value), so one slow engine cannot eat the run's budget.
    Returns (seconds until every CLI returned, [errors]); skipped starts are not errors."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        r = engine.run("run", "-d", "--network", network, "--name", f"{name_prefix}-{i}",
                       "busybox", "sleep", "1000000", check=False)
        return None if r.returncode == 0 else r.stderr.strip()[-200:]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        errors = [e for e in ex.map(one, range(n)) if e]
    return time.perf_counter() - t0, errors
