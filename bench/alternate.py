#!/usr/bin/env python3
"""Time commands side by side, alternating A B A B ..., and print medians, p90 and ratios.

Usage: alternate.py --name NAME [--metric TEXT] --runs N [--warmup W] [--out results.json] \
           [--mode wall|first-output] [--bytes B] \
           --cmd LABEL 'shell command' [--pre LABEL 'cmd'] [--post LABEL 'cmd'] \
           [--target LABEL MS] [--target-ratio LABEL OTHER X] [--missing LABEL 'reason'] \
           [--optional LABEL] ...
The first --cmd is the subject (berth); ratios are other/subject (>1 means berth is faster).
Each command runs through /bin/sh -c; its output is discarded. --pre/--post run untimed before/after
every run of that label (e.g. `rmi` before a cold pull). --target-ratio: LABEL's target is to be
at least X times better than OTHER (median against median). --mode first-output times until the first
byte on stdout (the rest is drained untimed). --bytes turns times into MB/s (higher is better).

Before the warm-up every command is probed once: a label that fails its probe is reported as not
available with the tail of its error, and the others still run. A competitor (not --optional)
failing makes the exit status 1; an --optional one (berth pieces not built yet) does not.
A run failing after a good probe aborts that label (recorded as missing with the error).
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def sh(cmd):
    return subprocess.run(["/bin/sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(cmd, mode):
    """(milliseconds, returncode, stderr tail)."""
    if mode == "first-output":
        t0 = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = os.read(p.stdout.fileno(), 1)
        dt = (time.perf_counter() - t0) * 1000.0
        p.stdout.read()
        err = p.stderr.read()
        rc = p.wait()
        if not first and rc == 0:
            rc, err = 1, b"no output"
        return dt, rc, err.decode(errors="replace")[-400:]
    t0 = time.perf_counter()
    r = sh(cmd)
    dt = (time.perf_counter() - t0) * 1000.0
    return dt, r.returncode, r.stderr.decode(errors="replace")[-400:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--metric")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--append", action="store_true", help="add rows to an existing --out file")
    ap.add_argument("--mode", choices=["wall", "first-output"], default="wall")
    ap.add_argument("--bytes", type=float)
    ap.add_argument("--target-ms", type=float, help="target for the first --cmd (old form)")
    ap.add_argument("--cmd", nargs=2, action="append", metavar=("LABEL", "COMMAND"), default=[])
    ap.add_argument("--pre", nargs=2, action="append", metavar=("LABEL", "COMMAND"), default=[])
    ap.add_argument("--post", nargs=2, action="append", metavar=("LABEL", "COMMAND"), default=[])
    ap.add_argument("--target", nargs=2, action="append", metavar=("LABEL", "VALUE"), default=[])
    ap.add_argument("--target-ratio", nargs=3, action="append", metavar=("LABEL", "OTHER", "X"), default=[])
    ap.add_argument("--missing", nargs=2, action="append", metavar=("LABEL", "REASON"), default=[])
    ap.add_argument("--optional", action="append", default=[])
    a = ap.parse_args()
    metric = a.metric or a.name
    pre, post = dict(a.pre), dict(a.post)
    targets = {k: float(v) for k, v in a.target}
    if a.target_ms is not None and a.cmd:
        targets.setdefault(a.cmd[0][0], a.target_ms)
    missing = [{"metric": metric, "engine": l, "reason": r} for l, r in a.missing]
    failed_competitor = False

    live = []
    for label, cmd in a.cmd:
        if label in pre:
            sh(pre[label])
        _, rc, err = timed(cmd, a.mode)
        if label in post:
            sh(post[label])
        if rc != 0:
            why = f"probe failed (exit {rc}): {err.strip().splitlines()[-1] if err.strip() else ''}"
            if label in a.optional:
                why = "not available yet: " + why
            else:
                failed_competitor = True
            sys.stderr.write(f"{a.name}: {label}: {why}\n")
            missing.append({"metric": metric, "engine": label, "reason": why})
        else:
            live.append((label, cmd))

    times = {label: [] for label, _ in live}
    dead = set()
    for i in range(a.warmup + a.runs):
        for label, cmd in live:
            if label in dead:
                continue
            if label in pre:
                sh(pre[label])
            dt, rc, err = timed(cmd, a.mode)
            if label in post:
                sh(post[label])
            if rc != 0:
                sys.stderr.write(f"{a.name}: {label} failed (exit {rc}): {err}\n")
                missing.append({"metric": metric, "engine": label, "reason": f"run {i} failed (exit {rc}): {err.strip()[-200:]}"})
                dead.add(label)
                if label not in a.optional:
                    failed_competitor = True
                continue
            if i >= a.warmup:
                times[label].append(dt)

    rows = []
    for label, _ in live:
        if label in dead or not times[label]:
            continue
        t = targets.get(label)
        if a.bytes:
            samples = [a.bytes / (1 << 20) / (ms / 1000.0) for ms in times[label]]
            rows.append(benchlib.make_row(metric, label, "MB/s", samples, lower_is_better=False, target=t))
        else:
            rows.append(benchlib.make_row(metric, label, "ms", times[label], target=t))
    by_label = {r["engine"]: r for r in rows}
    for label, other, x in a.target_ratio:
        x = float(x)
        text = f">= {x:g}x {'faster' if not a.bytes else 'better'} than {other}"
        r, o = by_label.get(label), by_label.get(other)
        if r is None:
            for m in missing:
                if m["engine"] == label:
                    m["target_text"], m["verdict"] = text, "NOT MEASURED"
            continue
        r["target"], r["target_text"] = x, text
        if o is None or r["median"] <= 0 or o["median"] <= 0:
            r["verdict"] = "NOT MEASURED"
            continue
        got = o["median"] / r["median"] if r["lower_is_better"] else r["median"] / o["median"]
        r["verdict"] = "MET" if got >= x else "MISSED"
    for m in missing:  # targets of engines that could not run are still stated
        if m["engine"] in targets and "target_text" not in m:
            m["target_text"] = f"<= {targets[m['engine']]:g} ms"
            m["verdict"] = "NOT MEASURED"
    benchlib.print_table(rows, missing, title=f"{a.name} ({a.runs} runs each, alternating, after {a.warmup} warm-up)")
    if a.out:
        if a.append and os.path.exists(a.out):
            import json
            with open(a.out) as f:
                doc = json.load(f)
            rows = doc.get("rows", []) + rows
            missing = doc.get("missing", []) + missing
        benchlib.write_result(a.out, a.name, rows, missing, {"runs": a.runs, "warmup": a.warmup})
    sys.exit(1 if failed_competitor else 0)


if __name__ == "__main__":
    main()
