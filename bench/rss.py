#!/usr/bin/env python3
"""Benchmark 4: idle daemon RSS (berthd vs dockerd + containerd; podman has no daemon) and memory
per running container (berth-shim vs containerd-shim-runc-v2 vs conmon) with N `sleep` containers.
VmRSS from /proc/<pid>/status (counts shared pages in full: what `ps`/`top` show) and Pss from
/proc/<pid>/smaps_rollup (shared pages divided among sharers). Per-container figures are per
shim process, so median/p90 are across the N shims."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import engines  # noqa: E402
import procs  # noqa: E402

N = int(os.environ.get("BENCH_RSS_N", "100"))
# "Idle" is a daemon at rest: no request for this many seconds before the samples (the set-up's
# last requests — image load, version probes — end just before this benchmark starts).
SETTLE_S = float(os.environ.get("BENCH_IDLE_SETTLE", "5"))
OUT = os.path.join(os.environ["BENCH_RESULTS"], "rss.json")
MB = 1024.0


def daemon_mem(e, samples=5):
    rss, pss, detail = [], [], {}
    for _ in range(samples):
        groups = e.daemon_pids()
        allp = [p for ps in groups.values() for p in ps]
        r, p, _ = procs.mem(allp)
        rss.append(r / MB)
        pss.append(p / MB)
        detail = {name: round(procs.mem(ps)[0] / MB, 1) for name, ps in groups.items()}
        time.sleep(0.5)
    return rss, pss, detail


def main():
    engs, miss = engines.available()
    rows, missing = [], []
    m_idle = "daemon idle RSS"
    m_idle_pss = "daemon idle PSS"
    m_shim = f"RSS per running container: shim process ({N} sleep containers)"
    m_shim_pss = f"PSS per running container: shim process ({N} sleep containers)"
    m_dn = f"daemon RSS with {N} containers running"
    m_tot = f"memory per container incl. daemon growth (RSS, {N} containers)"
    for label, why in miss:
        for m, t in ((m_idle, 15), (m_shim, 1)):
            missing.append({"metric": m, "engine": label, "reason": why,
                            "target_text": f"<= {t} MB", "verdict": "NOT MEASURED"})
    failed = False
    for e in engs:
        e.rm_all()
        time.sleep(1)
        if e.label == "podman":
            for m in (m_idle, m_idle_pss, m_dn):
                missing.append({"metric": m, "engine": "podman",
                                "reason": "no daemon: podman forks per command, nothing stays resident"})
            idle = [0.0]
        else:
            time.sleep(SETTLE_S)
            idle, idle_pss, detail = daemon_mem(e)
            tgt = 15 if e.label == "berth" else None
            rows.append(benchlib.make_row(m_idle, e.label, "MB", idle, target=tgt, extra={"processes_mb": detail}))
            rows.append(benchlib.make_row(m_idle_pss, e.label, "MB", idle_pss))
        secs, errors = engines.start_many(e, N, "none", workers=4)
        if errors:
            failed = True
            missing.append({"metric": m_shim, "engine": e.label, "reason": f"{len(errors)} of {N} runs failed: {errors[0]}"})
            e.rm_all()
            continue
        engines.wait_running(e, N, timeout=120)
        time.sleep(2)
        shims = e.shim_pids()
        per = [procs.mem([p]) for p in shims]
        shim_rss = [r / MB for r, _, n in per if n]
        shim_pss = [p / MB for _, p, n in per if n]
        if len(shim_rss) < N:
            sys.stderr.write(f"rss: {e.label}: found {len(shim_rss)} shim processes for {N} containers\n")
        if not shim_rss:
            failed = True
            missing.append({"metric": m_shim, "engine": e.label,
                            "reason": f"no {e.shim_comm}* process found for {N} running containers"})
            e.rm_all()
            continue
        extra = {"shim_processes": len(shim_rss), "containers": N}
        rows.append(benchlib.make_row(m_shim, e.label, "MB", shim_rss, target=1 if e.label == "berth" else None, extra=extra))
        rows.append(benchlib.make_row(m_shim_pss, e.label, "MB", shim_pss, extra=extra))
        if e.label != "podman":
            dn, _, detail = daemon_mem(e, samples=3)
            rows.append(benchlib.make_row(m_dn, e.label, "MB", dn, extra={"processes_mb": detail}))
            growth = statistics.median(dn) - statistics.median(idle)
        else:
            growth = 0.0
        rows.append(benchlib.make_row(m_tot, e.label, "MB", [(growth + sum(shim_rss)) / N],
                                      extra={"daemon_growth_mb": round(growth, 1), "shims_total_mb": round(sum(shim_rss), 1)}))
        e.rm_all()
    benchlib.print_table(rows, missing, title=f"rss (idle daemons; {N} running containers per engine)")
    benchlib.write_result(OUT, "rss", rows, missing, {"containers": N})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
