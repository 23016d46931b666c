"""Shared result format and table printing for the benchmarks (imported by alternate.py, report.py
and the measuring helpers).

A benchmark's JSON file (bench/results/<name>.json) is
  {"bench": name, "time": ISO-8601, "host": {...}, "rows": [row...], "missing": [missing...]}
with one row per (metric, engine):
  {"metric", "engine", "unit", "median", "p90", "p99"?, "n", "samples", "lower_is_better",
   "target", "target_text", "verdict"}   (target/verdict only on berth's rows, from design.md section 6)
and one entry per engine that could not run: {"metric", "engine", "reason"}.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def make_row(metric, engine, unit, samples, lower_is_better=True, target=None, extra=None,
             target_on="median"):
    """One engine's figure for one metric; verdict MET/MISSED when a target is given."""
    med = statistics.median(samples)
    row = {"metric": metric, "engine": engine, "unit": unit, "median": round(med, 3),
           # p90 is always the bad side: slow times, low throughput
           "p90": round(pct(samples, 90 if lower_is_better else 10), 3), "n": len(samples),
           "samples": [round(x, 3) for x in samples], "lower_is_better": lower_is_better}
    if len(samples) >= 20:
        row["p99"] = round(pct(samples, 99 if lower_is_better else 1), 3)
    if target is not None:
        v = row.get(target_on, med)
        row["target"] = target
        row["target_text"] = ("" if target_on == "median" else target_on + " ") + \
            ("<= " if lower_is_better else ">= ") + f"{target:g} {unit}"
        ok = v <= target if lower_is_better else v >= target
        row["verdict"] = "MET" if ok else "MISSED"
    if extra:
        row.update(extra)
    return row


def host_info():
    info = {"kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    if os.environ.get("PODMAN_RUNTIME"):
        info["podman_runtime"] = os.environ["PODMAN_RUNTIME"]
    for name, cmd in (("dockerd", ["/usr/sbin/dockerd", "--version"]), ("podman", ["podman", "--version"]),
                      ("runc", ["runc", "--version"]), ("crun", ["crun", "--version"])):
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONTAINERS_")}
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, env=env).stdout.strip().splitlines()
            info[name] = out[0] if out else ""
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def write_result(path, bench, rows, missing, meta=None):
    doc = {"bench": bench, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "host": host_info(), "rows": rows, "missing": missing}
    if meta:
        doc.update(meta)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.rename(tmp, path)


def is_berth(engine):
    return engine.startswith("berth") or engine.endswith("berthd")


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def print_table(rows, missing, out=sys.stdout, title=None):
    """Per metric: every engine's median/p90, its ratio to the subject (berth when measured, else
    the first engine listed), and berth's target with MET/MISSED."""
    metrics = []
    for r in rows + missing:
        if r["metric"] not in metrics:
            metrics.append(r["metric"])
    if title:
        out.write(f"\n== {title}\n")
    for m in metrics:
        mr = [r for r in rows if r["metric"] == m]
        mm = [r for r in missing if r["metric"] == m]
        unit = mr[0]["unit"] if mr else ""
        subject = next((r for r in mr if r["engine"] == "berth"), None) or \
            next((r for r in mr if is_berth(r["engine"])), None) or (mr[0] if mr else None)
        lower = mr[0]["lower_is_better"] if mr else True
        out.write(f"\n{m}  [{unit}, {'lower' if lower else 'higher'} is better]\n")
        if subject:
            rh = f"x (>1: {subject['engine']} better)"
            out.write(f"  {'engine':<20}{'median':>10}{'p90':>10}{'p99':>10}{'n':>5}   {rh:<28}{'target (design §6)':<22}\n")
        for r in mr:
            if subject and subject["median"] > 0 and r["median"] > 0:
                ratio = r["median"] / subject["median"] if lower else subject["median"] / r["median"]
                rs = "subject" if r is subject else f"{ratio:.2f}"
            else:
                rs = "-"
            tgt = f"{r.get('target_text', '')} {r.get('verdict', '')}".strip()
            out.write(f"  {r['engine']:<20}{fmt(r['median']):>10}{fmt(r.get('p90')):>10}{fmt(r.get('p99')):>10}{r['n']:>5}   {rs:<28}{tgt:<22}\n")
        for r in mm:
            tgt = f" [target {r['target_text']}: NOT MEASURED]" if r.get("target_text") else ""
            out.write(f"  {r['engine']:<20}{r['reason']}{tgt}\n")
    out.flush()
