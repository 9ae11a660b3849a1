#!/usr/bin/env bash
# Registry lookups at scale: `drover models show NAME@production` (and NAME/V, and `models
# history`) against a registry holding VERSIONS versions of one model, side by side in the
# same run with the same lookups against a registry holding 1 version (the floor: what the
# process start and one lookup cost). The versions are real: one `drover run` of a DAG with
# VERSIONS `train` tasks (a shell script each), so every version has its run, try, inputs,
# artifact and metrics as a retrain's would. Prints the median wall time of each lookup and
# the ratio to the floor.
# Usage: bench/models_bench.sh [BUILD_DIR] [VERSIONS] [REPEATS]   (default build 10000 30)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
versions=${2:-10000}
repeats=${3:-30}
drover=$build/drover
[ -x "$drover" ] || { echo "no $drover: build it first" >&2; exit 2; }
work=$(mktemp -d /tmp/drover-models-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

# A DAG of N train tasks of model `clicks`, each writing its artifact and metrics.
make_dag() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("dag: registry_fill\ndefaults: {retries: 0}\ntasks:\n")
    for i in range(n):
        f.write(f"  t{i}:\n    type: train\n    run: >-\n"
                f"      printf '{{\"auc\": 0.{i % 1000:03d}5}}' > metrics.json && echo {i} > model.pkl\n"
                f"    with: {{model: clicks, artifacts: [model.pkl], metrics: metrics.json}}\n")
PY
}

# 10,000 tasks make a DAG file past the default limits (1 MiB, 100,000 YAML nodes).
printf 'dags: {max_file_bytes: 67108864, max_yaml_nodes: 10000000}\n' >"$work/config.yaml"
chmod 600 "$work/config.yaml"

fill() {  # HOME N: one run registering N versions, then production -> the middle one
  make_dag "$work/fill-$2.yaml" "$2"
  local t0 t1
  t0=$(date +%s.%N)
  "$drover" run "$work/fill-$2.yaml" --home "$1" --project-dir "$work" \
    --config "$work/config.yaml" >/dev/null
  t1=$(date +%s.%N)
  echo "registered $2 versions in $(echo "$t1 - $t0" | bc) s (one run of $2 train tasks)" >&2
  "$drover" models alias clicks production $(( ($2 + 1) / 2 )) --home "$1" --force \
    --reason bench >/dev/null
}

median_ms() {  # HOME ARGS...: the median wall time of `drover ARGS --home HOME` in ms
  local home=$1
  shift
  for _ in $(seq "$repeats"); do
    local t0 t1
    t0=$(date +%s%N)
    "$drover" "$@" --home "$home" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'
}

fill "$work/one" 1
fill "$work/many" "$versions"
mid=$(( (versions + 1) / 2 ))
printf '%-34s %12s %14s %8s\n' "lookup" "1 version ms" "$versions vers. ms" "ratio"
for args in "models show clicks@production --json" "models show clicks/$mid --json" \
            "models show clicks --json" "models ls --json" "models history clicks --json"; do
  # shellcheck disable=SC2086
  a=$(median_ms "$work/one" ${args//\/$mid//1})
  # shellcheck disable=SC2086
  b=$(median_ms "$work/many" $args)
  printf '%-34s %12s %14s %8.2f\n' "$args" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
echo "store: $(du -h "$work/many/drover.db" | cut -f1) for $versions versions; median of $repeats"
