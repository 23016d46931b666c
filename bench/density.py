#!/usr/bin/env python3
"""Benchmark 6: density. Per engine (one after the other: thousands of containers of two engines
at once would measure the machine, not the engine): start N `busybox sleep` containers with
--network none through BENCH_DENSITY_PAR concurrent CLIs, then N_BRIDGE on the default bridge; for
each: time until all are running, daemon RSS, `ps` latency (median and p99 over BENCH_PS_RUNS
listings while they run), time to remove them all with one `rm -f`. Starting stops after
BENCH_DENSITY_BUDGET seconds (180) per engine and batch; the start rate is always reported."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import engines  # noqa: E402
import procs  # noqa: E402

N = int(os.environ.get("BENCH_DENSITY_N", "1000"))
NB = int(os.environ.get("BENCH_DENSITY_BRIDGE_N", "250"))
PAR = int(os.environ.get("BENCH_DENSITY_PAR", "8"))
PS_RUNS = int(os.environ.get("BENCH_PS_RUNS", "20"))
# Seconds one engine may spend starting one batch; past it the figure is the start rate and how
# many were running (keeps bench/run under its 30 min budget when an engine slows down with N).
BUDGET = float(os.environ.get("BENCH_DENSITY_BUDGET", "180"))
OUT = os.path.join(os.environ["BENCH_RESULTS"], "density.json")


def ps_latency(e, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        e.run("ps", "-q")
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def main():
    engs, miss = engines.available()
    rows, missing = [], []
    failed = False
    for net, n in (("none", N), ("bridge", NB)):
        if n <= 0:
            continue
        tag = f"{n} containers, --network {net}"
        m_up, m_rss = f"density {tag}: time to all running", f"density {tag}: daemon RSS"
        m_rate = f"density {tag}: start rate"
        m_ps, m_rm = f"density {tag}: `ps` latency", f"density {tag}: time to remove all"
        for label, why in miss:
            missing.append({"metric": m_up, "engine": label, "reason": why})
            missing.append({"metric": m_ps, "engine": label, "reason": why,
                            "target_text": "p99 <= 100 ms", "verdict": "NOT MEASURED"})
        for e in engs:
            e.rm_all()
            if e.label == "berth":
                # berth pieces may not support this network yet (bridge): one probe container
                # decides, and berth is then listed as not available rather than failing the run.
                probe = e.run("run", "--rm", "--network", net, "busybox", "true", check=False)
                if probe.returncode != 0:
                    # the first line is the error; CLIs end with a "Run '... --help'" hint
                    err = (probe.stderr.strip().splitlines() or [""])[0][-160:]
                    why = f"not available yet: run --network {net} fails: {err}"
                    missing.append({"metric": m_up, "engine": e.label, "reason": why})
                    missing.append({"metric": m_ps, "engine": e.label, "reason": why,
                                    "target_text": "p99 <= 100 ms", "verdict": "NOT MEASURED"})
                    sys.stderr.write(f"density: {e.label}: {why}\n")
                    continue
            sys.stderr.write(f"density: {e.label}: starting {n} containers ({net}, {PAR} concurrent CLIs)\n")
            t0 = time.perf_counter()
            secs, errors = engines.start_many(e, n, net, workers=PAR, name_prefix=f"bbd-{net}",
                                              deadline=t0 + BUDGET)
            up = engines.wait_running(e, n, timeout=60 if secs >= BUDGET else 600)
            total = time.perf_counter() - t0
            running = len(e.ids())
            rows.append(benchlib.make_row(m_rate, e.label, "containers/s", [running / total], lower_is_better=False,
                                          extra={"running": running, "seconds": round(total, 1)}))
            if errors:
                failed = True
                why = f"{len(errors)} of {n} runs failed ({errors[0]}); {running} running"
                missing.append({"metric": m_up, "engine": e.label, "reason": why})
                sys.stderr.write(f"density: {e.label}: {why}\n")
            elif up is None:
                why = f"only {running} of {n} running after the {BUDGET:.0f} s start budget (BENCH_DENSITY_BUDGET)"
                missing.append({"metric": m_up, "engine": e.label, "reason": why})
                sys.stderr.write(f"density: {e.label}: {why}\n")
            else:
                rows.append(benchlib.make_row(m_up, e.label, "s", [total], extra={"containers": n, "concurrency": PAR}))
            groups = e.daemon_pids()
            if groups:
                r = [procs.mem([p for ps in groups.values() for p in ps])[0] / 1024.0]
                rows.append(benchlib.make_row(m_rss, e.label, "MB", r, extra={
                    "processes_mb": {k: round(procs.mem(v)[0] / 1024.0, 1) for k, v in groups.items()}}))
            lat = ps_latency(e, PS_RUNS)
            row = benchlib.make_row(m_ps, e.label, "ms", lat, target=100 if e.label == "berth" else None,
                                    target_on="p99")
            row["p99"] = round(benchlib.pct(lat, 99), 3)
            rows.append(row)
            t0 = time.perf_counter()
            e.rm_all()
            left = len(e.ids(all_=True))
            rows.append(benchlib.make_row(m_rm, e.label, "s", [time.perf_counter() - t0], extra={"left": left}))
            sys.stderr.write(f"density: {e.label}: {running} up in {total:.1f} s, ps p99 {row['p99']:.0f} ms, removed, {left} left\n")
    benchlib.print_table(rows, missing, title=f"density (N={N} --network none, {NB} bridge; {PAR} concurrent CLIs)")
    benchlib.write_result(OUT, "density", rows, missing, {"n_none": N, "n_bridge": NB, "concurrency": PAR, "ps_runs": PS_RUNS})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
