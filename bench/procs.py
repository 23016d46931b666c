#!/usr/bin/env python3
"""Process helpers for the benchmarks: find this run's processes and read their memory.

`procs.py match` prints the pids whose command line contains $BENCH_PAT (never this process or
its ancestors). As a module: `pids(comm_prefix, cmdline_has)`, `mem(pids)`.
"""
import os
import sys


def ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pids(comm_prefix=None, cmdline_has=None, parent=None):
    """Pids whose comm starts with comm_prefix, whose cmdline contains cmdline_has, whose parent
    is parent (each filter optional); never this process or its ancestors."""
    skip = ancestors()
    out = []
    for p in all_pids():
        if p in skip:
            continue
        if comm_prefix and not comm(p).startswith(comm_prefix):
            continue
        if cmdline_has and cmdline_has not in cmdline(p):
            continue
        if parent and ppid(p) != parent:
            continue
        out.append(p)
    return sorted(out)


def mem(pid_list):
    """(rss_kb, pss_kb, count) summed over pids: VmRSS from status, Pss from smaps_rollup."""
    rss = pss = n = 0
    for p in pid_list:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
            n += 1
        except (OSError, ValueError):
            continue
    return rss, pss, n


if __name__ == "__main__":
    if sys.argv[1:] == ["match"]:
        pat = os.environ.get("BENCH_PAT", "")
        if pat:
            for p in pids(cmdline_has=pat):
                print(p)
    else:
        sys.exit("usage: BENCH_PAT=... procs.py match")
