#!/usr/bin/python3
"""Upstream-exit -> downstream-spawn latency from a finished drover run's try records.

  latency.py DAG.yaml RUN_DIR [--json]

DAG.yaml is one written by bench/gen_dags.py (one task per line, `needs: [..]` inline).
RUN_DIR is HOME/runs/RUN_ID. For every task with needs, the latency is its first try's
result.json started_at minus the latest ended_at among its needs (both in microseconds since
the epoch, written by the try process itself at its start and end). Prints count, p50, p90,
p99 and max in milliseconds.
"""

import json
import os
import re
import sys

LINE = re.compile(r"^  (\w+): \{run: \[true\](?:, needs: \[([^\]]*)\])?\}\s*$")


def load_needs(path):
    needs = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                needs[m.group(1)] = [d.strip() for d in (m.group(2) or "").split(",") if d.strip()]
    return needs


def first_try(run_dir, task):
    task_dir = os.path.join(run_dir, task)
    tries = sorted(os.listdir(task_dir), key=lambda s: int(s) if s.isdigit() else 1 << 30)
    with open(os.path.join(task_dir, tries[0], "result.json")) as f:
        return json.load(f)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    needs = load_needs(argv[1])
    res = {t: first_try(argv[2], t) for t in needs}
    lat = []
    for t, deps in needs.items():
        if deps:
            up_end = max(res[d]["ended_at"] for d in deps)
            lat.append((res[t]["started_at"] - up_end) / 1000.0)
    lat.sort()
    out = {"edges": len(lat), "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
           "p99_ms": percentile(lat, 99), "max_ms": lat[-1] if lat else float("nan"),
           "min_ms": lat[0] if lat else float("nan")}
    if "--json" in argv:
        print(json.dumps(out))
    else:
        print("edges=%(edges)d min=%(min_ms).3f p50=%(p50_ms).3f p90=%(p90_ms).3f "
              "p99=%(p99_ms).3f max=%(max_ms).3f (ms)" % out)


if __name__ == "__main__":
    main(sys.argv)
