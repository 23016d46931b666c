#!/usr/bin/env python3
"""Combine bench/results/<name>.json files into one table, latest.json, latest.md and ratios.svg.

Usage: report.py [--prev FILE] NAME...   (names of the benchmarks run; others' files are ignored)
--prev: an earlier latest.json; each figure is printed with its change against it.
"""
import argparse
import html
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))


def subject_of(rows):
    return next((r for r in rows if r["engine"] == "berth"), None) or \
        next((r for r in rows if benchlib.is_berth(r["engine"])), None) or (rows[0] if rows else None)


def ratio(r, s):
    if not s or s["median"] <= 0 or r["median"] <= 0:
        return None
    return r["median"] / s["median"] if r["lower_is_better"] else s["median"] / r["median"]


def metrics_of(docs):
    out = []
    for name, d in docs.items():
        seen = []
        for r in d["rows"] + d["missing"]:
            if r["metric"] not in seen:
                seen.append(r["metric"])
        for m in seen:
            rows = [r for r in d["rows"] if r["metric"] == m]
            miss = [r for r in d["missing"] if r["metric"] == m]
            out.append((name, m, rows, miss))
    return out


def markdown(docs, extra):
    lines = ["| benchmark | engine | median | p90 | ratio (>1: subject better) | berth target (design §6) |",
             "|---|---|---:|---:|---:|---|"]
    for _, m, rows, miss in metrics_of(docs):
        s = subject_of(rows)
        for r in rows:
            x = ratio(r, s)
            rs = "subject" if r is s else (f"{x:.2f}" if x else "-")
            tgt = f"{r.get('target_text', '')} **{r['verdict']}**" if r.get("verdict") else ""
            lines.append(f"| {m} | {r['engine']} | {benchlib.fmt(r['median'])} {r['unit']} | "
                         f"{benchlib.fmt(r.get('p90'))} | {rs} | {tgt} |")
        for r in miss:
            tgt = f"{r['target_text']} NOT MEASURED" if r.get("target_text") else ""
            lines.append(f"| {m} | {r['engine']} | - | - | - | {tgt} ({r['reason'][:90]}) |")
    return "\n".join(lines + [""] + extra) + "\n"


def svg(docs, path):
    """Horizontal bars: each engine's figure as a ratio to the subject (log scale, 1 = subject)."""
    items = []
    for _, m, rows, _ in metrics_of(docs):
        s = subject_of(rows)
        if not s or len(rows) < 2:
            continue
        for r in rows:
            if r is s:
                continue
            x = ratio(r, s)
            if x:
                items.append((f"{m[:60]} — {r['engine']} vs {s['engine']}", x))
    if not items:
        return
    w, left, bh = 1000, 560, 18
    h = 40 + bh * len(items) + 20
    lo, hi = -1.5, 2.0  # log10 range: 0.03x .. 100x
    xpos = lambda v: left + (min(max(math.log10(v), lo), hi) - lo) / (hi - lo) * (w - left - 20)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<text x="10" y="18" font-size="13">Ratios (log scale; &gt;1: the subject, berth when measured, is better). {time.strftime("%Y-%m-%d")}</text>']
    x1 = xpos(1)
    for i, (label, v) in enumerate(items):
        y = 34 + i * bh
        xv = xpos(v)
        color = "#2a7" if v >= 1 else "#c44"
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{min(x1, xv):.1f}" y="{y + 2}" width="{abs(xv - x1):.1f}" height="{bh - 5}" fill="{color}"/>')
        out.append(f'<text x="{max(x1, xv) + 4:.1f}" y="{y + 12}">{v:.2f}x</text>')
    out.append(f'<line x1="{x1:.1f}" y1="28" x2="{x1:.1f}" y2="{h - 10}" stroke="#000"/>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prev")
    ap.add_argument("--elapsed", type=float)
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    names = a.names or sorted(f[:-5] for f in os.listdir(RESULTS)
                              if f.endswith(".json") and f != "latest.json")
    docs = {}
    for n in names:
        p = os.path.join(RESULTS, f"{n}.json")
        if os.path.exists(p):
            with open(p) as f:
                docs[n] = json.load(f)
    # rt-core's bench/runtime writes runtime.json: include it when it is there
    rt = os.path.join(RESULTS, "runtime.json")
    if "runtime" not in docs and os.path.exists(rt) and "run-none" in names:
        with open(rt) as f:
            d = json.load(f)
        if "rows" in d:
            docs["runtime"] = d
    prev = {}
    if a.prev and os.path.exists(a.prev):
        with open(a.prev) as f:
            for d in json.load(f).get("benches", {}).values():
                for r in d.get("rows", []):
                    prev[(r["metric"], r["engine"])] = r["median"]
    print("\n================ berth benchmarks: all results ================")
    for n, d in docs.items():
        benchlib.print_table(d["rows"], d["missing"], title=n)
        if prev:
            for r in d["rows"]:
                p = prev.get((r["metric"], r["engine"]))
                if p:
                    print(f"    vs previous run: {r['engine']:<16} {r['metric'][:60]}: {p:g} -> {r['median']:g} {r['unit']}")
    verdicts = []
    for n, d in docs.items():
        for r in d["rows"] + d["missing"]:
            if r.get("verdict"):
                verdicts.append({"bench": n, "metric": r["metric"], "engine": r["engine"],
                                 "target": r.get("target_text"), "verdict": r["verdict"],
                                 "median": r.get("median"), "p99": r.get("p99")})
    print("\n================ design §6 targets ================")
    for v in verdicts:
        fig = "" if v["median"] is None else f"  ({benchlib.fmt(v['median'])}" + \
            (f", p99 {benchlib.fmt(v['p99'])}" if v.get("p99") is not None and "p99" in (v["target"] or "") else "") + ")"
        print(f"  {v['verdict']:<13} {v['engine']:<15} {v['metric'][:62]:<62} {v['target']}{fig}")
    fw = os.path.join(RESULTS, "teardown-firewall.txt")
    extra = []
    if a.elapsed:
        extra.append(f"Whole run: {a.elapsed / 60:.1f} min.")
    latest = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "elapsed_s": a.elapsed,
              "host": benchlib.host_info(), "benches": docs, "targets": verdicts}
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump(latest, f, indent=1)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(f"Results of `bench/run` on {latest['time']} ({latest['host'].get('cpus')} CPUs, kernel "
                f"{latest['host'].get('kernel')}; {latest['host'].get('dockerd', '')}; {latest['host'].get('podman', '')}).\n\n")
        f.write(markdown(docs, extra))
        if os.path.exists(fw):
            f.write("\nTeardown: " + open(fw).read().strip().splitlines()[0] + "\n")
    svg(docs, os.path.join(RESULTS, "ratios.svg"))
    print(f"\nwrote {RESULTS}/latest.json, latest.md, ratios.svg")


if __name__ == "__main__":
    main()
