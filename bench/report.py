#!/usr/bin/python3
"""Summarises bench/run_all.sh's raw samples into the Markdown of docs/benchmarks.md.

  report.py SAMPLES.tsv ENV.tsv EDGES.tsv

Every figure is the median over repetitions (the machine is shared and noisy).
"""

import json
import statistics
import sys
from collections import defaultdict


def main(argv):
    samples = defaultdict(list)  # (section, case, tool) -> [value]
    for line in open(argv[1]):
        section, case, tool, rep, value = line.rstrip("\n").split("\t")
        samples[(section, case, tool)].append(float(value))
    env = [line.rstrip("\n").split("\t", 1) for line in open(argv[2]) if "\t" in line]
    edges = {}
    for line in open(argv[3]):
        if "\t" in line:
            k, v = line.split("\t", 1)
            edges[k] = json.loads(v)

    def med(section, case, tool):
        v = samples.get((section, case, tool))
        return statistics.median(v) if v else float("nan")

    def n(section, case, tool):
        return len(samples.get((section, case, tool), []))

    out = []
    w = out.append
    w("## Machine\n")
    for k, v in env:
        w("- %s: %s" % (k, v))
    w("")

    w("## 1. Scheduling overhead (seconds, median of repetitions; `true` tasks, 2 slots)\n")
    tools = ["floor", "make", "ninja", "snakemake", "drover_disk", "drover_tmpfs"]
    w("| graph | tasks | " + " | ".join(tools) + " |")
    w("|---|---|" + "---|" * len(tools))
    size = int(dict(env).get("tasks_n", "1000"))
    tasks_of = {"chain": size, "fanout": size + 2}
    for case in ["chain", "fanout"]:
        cells = []
        for t in tools:
            cells.append("%.3f (n=%d)" % (med("overhead", case, t), n("overhead", case, t)))
        w("| %s | %d | %s |" % (case, tasks_of[case], " | ".join(cells)))
    w("")
    w("| graph | home | overhead per task above floor (target <= 1 ms) | drover / ninja "
      "(target < 1) | drover / make | drover / snakemake |")
    w("|---|---|---|---|---|---|")
    for case in ["chain", "fanout"]:
        floor = med("overhead", case, "floor")
        for where in ["disk", "tmpfs"]:
            d = med("overhead", case, "drover_" + where)
            tasks = tasks_of[case]
            w("| %s | %s | %.2f ms (%.1fx target) | %.2f | %.2f | %.2f |" % (
                case, where, (d - floor) / tasks * 1000, (d - floor) / tasks * 1000 / 1.0,
                d / med("overhead", case, "ninja"), d / med("overhead", case, "make"),
                d / med("overhead", case, "snakemake")))
    w("")
    for k, v in sorted(edges.items()):
        w("- %s (gap upstream ended_at -> downstream started_at inside the last `drover run` "
          "of the chain): p50 %.3f ms, p99 %.3f ms, max %.3f ms" % (
              k, v["p50_ms"], v["p99_ms"], v["max_ms"]))
    w("")

    w("## 2. Daemon latency, upstream exit -> downstream spawn (ms, median of per-run figures)\n")
    w("| daemon home | p50 (target <= 1) | p99 (target <= 5) | max | runs |")
    w("|---|---|---|---|---|")
    for where in ["disk", "tmpfs"]:
        case = "daemon_" + where
        if n("latency", case, "p50_ms"):
            w("| %s | %.3f (%.1fx target) | %.3f (%.1fx target) | %.3f | %d |" % (
                where, med("latency", case, "p50_ms"), med("latency", case, "p50_ms") / 1.0,
                med("latency", case, "p99_ms"), med("latency", case, "p99_ms") / 5.0,
                med("latency", case, "max_ms"), n("latency", case, "p50_ms")))
    w("")

    w("## 3. Loading %s DAG files (realistic: 5-10 tasks, params, cron), median of repetitions\n"
      % dict(env).get("lint_n", "?"))
    w("| measure | value | target | ratio to target |")
    w("|---|---|---|---|")
    rows = [("`drover lint DIR` wall time", med("load", "lint", "drover_lint"), "s", 1.0),
            ("`drover serve` start until the API lists every DAG",
             med("load", "serve_start_to_api_lists_all", "seconds"), "s", 1.0),
            ("daemon VmRSS, DAGs loaded", med("load", "rss_daemon_mb", "MB"), "MB", 50.0),
            ("daemon + worker processes VmRSS", med("load", "rss_daemon_and_workers_mb", "MB"),
             "MB", 50.0)]
    for name, value, unit, target in rows:
        w("| %s | %.3f %s | <= %g %s | %.2f |" % (name, value, unit, target, unit, value / target))
    for (section, case, tool), values in sorted(samples.items()):
        if section == "load" and case == "idle_cpu_ticks":
            w("| idle CPU (utime+stime of daemon and workers, 1 tick = 10 ms) | %g %s "
              "| ~0 | - |" % (statistics.median(values), tool))
        if section == "load" and case in ("dags_listed_plus_errors", "runs_fired_while_idle",
                                         "worker_processes"):
            w("| %s | %g | - | - |" % (case.replace("_", " "), statistics.median(values)))
    w("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
