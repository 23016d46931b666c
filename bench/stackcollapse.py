#!/usr/bin/env python3
"""Fold `perf script` output into flamegraph input ("comm;frame;frame... count" per line, root
first), as Brendan Gregg's stackcollapse-perf.pl does; feed it to `inferno-flamegraph`
(`cargo install inferno`) or flamegraph.pl. Usage: perf script -i perf.data | stackcollapse.py"""
import collections
import re
import sys


def main():
    counts = collections.Counter()
    comm, frames = None, []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                counts[";".join([comm] + list(reversed(frames)))] += 1
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            comm = line.split()[0] if line.split() else "?"
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0])
        if sym == "[unknown]":
            m = re.search(r"\(([^)]+)\)", parts[1])
            sym = f"[{m.group(1).rsplit('/', 1)[-1]}]" if m else sym
        frames.append(sym.replace(";", ":"))
    if comm is not None:
        counts[";".join([comm] + list(reversed(frames)))] += 1
    for stack, n in counts.most_common():
        print(f"{stack} {n}")


if __name__ == "__main__":
    main()
