#!/usr/bin/env python3
"""Time commands side by side, alternating A B A B ..., and print medians, p90 and ratios.

Usage: alternate.py --name NAME --runs N [--warmup W] [--out results.json] \
           --cmd LABEL 'shell command' --cmd LABEL 'shell command' ...
The first --cmd is the subject (berth); ratios are other/subject (>1 means berth is faster).
Each command runs through /bin/sh -c; its output is discarded; a failing run aborts the bench.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def pct(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--target-ms", type=float)
    ap.add_argument("--cmd", nargs=2, action="append", metavar=("LABEL", "COMMAND"), required=True)
    a = ap.parse_args()
    times = {label: [] for label, _ in a.cmd}
    for i in range(a.warmup + a.runs):
        for label, cmd in a.cmd:
            t0 = time.perf_counter()
            r = subprocess.run(["/bin/sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = (time.perf_counter() - t0) * 1000.0
            if r.returncode != 0:
                sys.stderr.write(f"{a.name}: {label} failed (exit {r.returncode}): {r.stderr.decode(errors='replace')[-500:]}\n")
                sys.exit(1)
            if i >= a.warmup:
                times[label].append(dt)
    subject = a.cmd[0][0]
    subj_med = statistics.median(times[subject])
    rows = []
    print(f"\n{a.name}  ({a.runs} runs each, alternating, after {a.warmup} warm-up)")
    print(f"{'engine':<22}{'median ms':>11}{'p90 ms':>9}{'ratio vs ' + subject:>22}")
    for label, _ in a.cmd:
        med = statistics.median(times[label])
        p90 = pct(times[label], 90)
        ratio = med / subj_med if subj_med > 0 else float("nan")
        rows.append({"engine": label, "median_ms": round(med, 3), "p90_ms": round(p90, 3),
                     "ratio_to_subject": round(ratio, 3)})
        print(f"{label:<22}{med:>11.2f}{p90:>9.2f}{ratio:>21.2f}x")
    if a.target_ms is not None:
        verdict = "MET" if subj_med <= a.target_ms else "MISSED"
        print(f"target for {subject}: <= {a.target_ms} ms: {verdict} ({subj_med:.2f} ms)")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"bench": a.name, "runs": a.runs, "subject": subject,
                       "target_ms": a.target_ms, "results": rows,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)


if __name__ == "__main__":
    main()
