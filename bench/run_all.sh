#!/bin/bash
# Drover's benchmarks (DESIGN.md section 12, issue 3), side by side in one run.
#
#   bench/run_all.sh [RESULTS.md]            (default: bench/results/latest.md)
#
# Environment: DROVER (binary; default build-bench/drover, else build/drover), REPS (3),
# SNAKEMAKE_REPS (1: Snakemake alone takes ~50 s a repetition), N (1000 tasks), LAT_N (200),
# LINT_N (1000 DAG files), IDLE_S (10), WORK (scratch on disk; default a /tmp folder).
# Needs bash, /usr/bin/python3, gcc, make, ninja, snakemake, curl. Prints progress on stderr,
# writes the raw samples next to the results (RESULTS.md.tsv) and the summary table to RESULTS.md.
#
# 1. Scheduling overhead: an N-task chain and an N-wide fan-out + join of `true` under
#    `drover run --slots 2` (home on disk and on tmpfs) vs the posix_spawn floor (bench/floor.c),
#    GNU make -j2, ninja -j2 and Snakemake --cores 2, interleaved per repetition.
# 2. Daemon latency: upstream result.json ended_at -> downstream started_at over a LAT_N chain
#    run through `drover serve` (triggered via the API).
# 3. `drover lint` of LINT_N realistic DAG files; daemon start, RSS and idle CPU with them loaded.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
PY=/usr/bin/python3
OUT=${1:-$BENCH/results/latest.md}
TSV=$OUT.tsv
mkdir -p "$(dirname "$OUT")"
REPS=${REPS:-3}
SNAKEMAKE_REPS=${SNAKEMAKE_REPS:-1}
N=${N:-1000}
LAT_N=${LAT_N:-200}
LINT_N=${LINT_N:-1000}
IDLE_S=${IDLE_S:-10}
if [[ -z ${DROVER:-} ]]; then
  DROVER=$ROOT/build-bench/drover
  [[ -x $DROVER ]] || DROVER=$ROOT/build/drover
fi
[[ -x $DROVER ]] || { echo "run_all.sh: no drover binary at $DROVER (set DROVER=...)" >&2; exit 1; }
DROVER=$(readlink -f "$DROVER")

WORK=${WORK:-$(mktemp -d /tmp/drover-bench.XXXXXX)}
mkdir -p "$WORK"
SHM=$(mktemp -d /dev/shm/drover-bench.XXXXXX)
SERVE_PID=
cleanup() {
  [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null || true
  rm -rf "$SHM"
  [[ -n ${KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench $(date +%T)] $*" >&2; }
sample() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$TSV"; }  # section case tool rep value

# timed DIR CMD... : runs CMD in DIR, stdout/stderr to DIR/.last.log, prints seconds.
timed() {
  local dir=$1; shift
  local t0=$EPOCHREALTIME
  if ! (cd "$dir" && "$@") > "$dir/.last.log" 2>&1; then
    echo "run_all.sh: failed in $dir: $*" >&2; tail -5 "$dir/.last.log" >&2; return 1
  fi
  local t1=$EPOCHREALTIME
  $PY -c "print('%.4f' % ($t1 - $t0))"
}

: > "$TSV"; : > "$OUT.edges"
log "drover=$DROVER work=$WORK shm=$SHM reps=$REPS"
{
  echo "date	$(date -Is)"
  echo "cpu	$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "kernel	$(uname -r)"
  echo "load_at_start	$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "disk_fs	$(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')"
  echo "drover	$DROVER ($(stat -c %y "$DROVER" | cut -d. -f1))"
  echo "make	$(make --version | head -1)"
  echo "ninja	$(ninja --version)"
  echo "snakemake	$(snakemake --version 2>/dev/null)"
  echo "tasks_n	$N"
  echo "lint_n	$LINT_N"
  echo "reps	$REPS (Snakemake: $SNAKEMAKE_REPS)"
} > "$OUT.env"

# fsync_probe : p50/p90 of 100 fdatasync()s of a 4 KiB write on the disk under $WORK. Every
# durable SQLite commit costs about one of these; the shared disk varies several-fold in a day.
fsync_probe() {
  $PY - "$WORK/fsync-probe" <<'PYEOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
ts = []
for _ in range(100):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    ts.append((time.perf_counter() - t) * 1e3)
os.unlink(sys.argv[1])
ts.sort()
print("p50 %.2f ms, p90 %.2f ms" % (ts[50], ts[90]))
PYEOF
}
echo "fdatasync_at_start	$(fsync_probe)" >> "$OUT.env"
gcc -O2 -o "$WORK/floor" "$BENCH/floor.c"

# ---- 1. scheduling overhead -------------------------------------------------------------------
for shape in chain fanout; do
  $PY "$BENCH/gen_dags.py" graph $shape "$N" "$WORK/$shape"
done
for rep in $(seq "$REPS"); do
  for shape in chain fanout; do
    g=$WORK/$shape
    if [[ $shape == chain ]]; then tasks=$N; par=1; else tasks=$((N + 2)); par=2; fi
    log "rep $rep $shape: floor make ninja drover(disk) drover(tmpfs) snakemake"
    sample overhead $shape floor "$rep" "$(timed "$g" "$WORK/floor" $tasks $par)"
    sample overhead $shape make "$rep" "$(timed "$g" make -s -j2 -f Makefile)"
    rm -f "$g/.ninja_log" "$g/.ninja_deps"
    sample overhead $shape ninja "$rep" "$(timed "$g" ninja -j2 -f build.ninja)"
    rm -rf "$WORK/home-$shape"
    sample overhead $shape drover_disk "$rep" \
      "$(timed "$g" "$DROVER" run dag.yaml --home "$WORK/home-$shape" --slots 2 -q)"
    rm -rf "$SHM/home-$shape"
    sample overhead $shape drover_tmpfs "$rep" \
      "$(timed "$g" "$DROVER" run dag.yaml --home "$SHM/home-$shape" --slots 2 -q)"
    if (( rep <= SNAKEMAKE_REPS )); then
      rm -rf "$g/out" "$g/.snakemake"
      sample overhead $shape snakemake "$rep" \
        "$(timed "$g" $PY "$BENCH/snakemake_deep.py" --cores 2 -q)"
    fi
  done
done
# Per-edge gaps inside the last `drover run` of the chain (result.json based, as in part 2).
for where in disk tmpfs; do
  if [[ $where == disk ]]; then h=$WORK/home-chain; else h=$SHM/home-chain; fi
  run=$(ls "$h/runs" | head -1)
  $PY "$BENCH/latency.py" "$WORK/chain/dag.yaml" "$h/runs/$run" --json \
    | sed "s/^/run_edges_$where\t/" >> "$OUT.edges"
done

# ---- 2. daemon latency -------------------------------------------------------------------------
$PY "$BENCH/gen_dags.py" graph chain "$LAT_N" "$WORK/lat"
mkdir -p "$WORK/lat-dags"
cp "$WORK/lat/dag.yaml" "$WORK/lat-dags/chain_$LAT_N.yaml"

# start_serve HOME DAGS : starts the daemon, waits for HOME/server.json, sets SERVE_PID.
start_serve() {
  rm -rf "$1"; mkdir -p "$1"
  "$DROVER" serve --home "$1" --dags "$2" --listen 127.0.0.1:0 --slots 2 > "$1.serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 600); do
    [[ -s $1/server.json && -s $1/token ]] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$1.serve.log" >&2; return 1; }
    sleep 0.01
  done
  echo "run_all.sh: daemon did not write $1/server.json" >&2; return 1
}
stop_serve() {
  kill "$SERVE_PID" 2>/dev/null || true
  wait "$SERVE_PID" 2>/dev/null || true
  SERVE_PID=
}

for where in disk tmpfs; do
  if [[ $where == disk ]]; then h=$WORK/lat-home; else h=$SHM/lat-home; fi
  start_serve "$h" "$WORK/lat-dags"
  for rep in $(seq "$REPS"); do
    log "rep $rep daemon latency ($where home)"
    run=$("$DROVER" trigger "chain_$LAT_N" --home "$h" --wait --json \
          | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    stats=$($PY "$BENCH/latency.py" "$WORK/lat/dag.yaml" "$h/runs/$run" --json)
    for k in p50_ms p99_ms max_ms; do
      sample latency "daemon_$where" $k "$rep" \
        "$(echo "$stats" | $PY -c "import json,sys; print('%.3f' % json.load(sys.stdin)['$k'])")"
    done
  done
  stop_serve
done

# ---- 3. loading, linting, RSS, idle CPU ---------------------------------------------------------
$PY "$BENCH/gen_dags.py" lint "$LINT_N" "$WORK/many"
for rep in $(seq "$REPS"); do
  log "rep $rep lint $LINT_N files"
  sample load lint drover_lint "$rep" "$(timed "$WORK" "$DROVER" lint "$WORK/many")"
done

# children PID : pids whose parent is PID (worker processes of the daemon).
children() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp="$1" '$4 == pp {print $1}'; }
# proc_ticks PID : utime+stime of PID and its children processes (clock ticks).
proc_ticks() {
  local total=0 p
  for p in $1 $(children "$1"); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo $total
}
# proc_rss_kb PID [children] : VmRSS of PID (plus its children with "children").
proc_rss_kb() {
  local total=0 p pids=$1
  [[ ${2:-} == children ]] && pids="$1 $(children "$1")"
  for p in $pids; do
    [[ -r /proc/$p/status ]] || continue
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
  done
  echo $total
}

for rep in $(seq "$REPS"); do
  log "rep $rep daemon with $LINT_N DAGs: start time, RSS, ${IDLE_S}s idle CPU"
  h=$WORK/idle-home
  t0=$EPOCHREALTIME
  start_serve "$h" "$WORK/many"
  # Loaded = the API lists every DAG.
  url=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$h/server.json")
  for _ in $(seq 1000); do
    n=$(curl -s -H "Authorization: Bearer $(cat "$h/token")" "$url/api/v1/dags" \
        | $PY -c 'import json,sys
d = json.load(sys.stdin)
print(len(d.get("dags", [])) + len(d.get("errors", [])))' 2>/dev/null || echo 0)
    (( n >= LINT_N )) && break
    sleep 0.01
  done
  t1=$EPOCHREALTIME
  sample load serve_start_to_api_lists_all seconds "$rep" "$($PY -c "print('%.4f' % ($t1 - $t0))")"
  sample load dags_listed_plus_errors count "$rep" "$n"
  sleep 1
  sample load rss_daemon_mb MB "$rep" "$(( $(proc_rss_kb "$SERVE_PID") / 1024 ))"
  sample load rss_daemon_and_workers_mb MB "$rep" \
    "$(( $(proc_rss_kb "$SERVE_PID" children) / 1024 ))"
  sample load worker_processes count "$rep" "$(children "$SERVE_PID" | wc -l)"
  c0=$(proc_ticks "$SERVE_PID")
  sleep "$IDLE_S"
  c1=$(proc_ticks "$SERVE_PID")
  sample load idle_cpu_ticks "ticks/${IDLE_S}s" "$rep" "$((c1 - c0))"
  sample load runs_fired_while_idle count "$rep" "$(ls "$h/runs" 2>/dev/null | wc -l)"
  stop_serve
done

echo "fdatasync_at_end	$(fsync_probe)" >> "$OUT.env"
echo "load_at_end	$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT.env"
$PY "$BENCH/report.py" "$TSV" "$OUT.env" "$OUT.edges" > "$OUT"
log "wrote $OUT"
cat "$OUT"
