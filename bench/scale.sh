#!/bin/bash
# Scheduling cost against the DAG's size (issue 8): per-task wall time of an N-task chain and
# an N-wide fan-out + join of `true` under `drover run --slots 2` (home on disk: every
# transition committed, records whole; and home on tmpfs, where the scheduler's own cost
# shows without the disk's), side by side with `ninja -j2` on the same graph and with two
# floors (bench/floor.c): the same number of `true` processes spawned in the graph's order with
# nothing else (`floor`, the bound for a home on tmpfs), and the same plus one 4 KiB append +
# fdatasync on the disk after each exit, before the next spawn (`floor_durable`: the least any
# scheduler can cost that commits every transition with synchronous=FULL before the action it
# allows; the bound for a home on disk).
#
# Three homes: `disk` (a folder under WORK, on whatever file system holds it), `ext4` (a
# journaled ext4, made for the run in an image under WORK and loop-mounted: the file system a
# default Debian install puts a home on; only as root, skipped where mount -o loop fails) and
# `tmpfs`. Why `ext4` besides `disk`: this machine's root file system is ext4 *without* a
# journal, and there ext4 skips, for every new inode, each free inode of the group deleted in
# the last 60 s (300 s more while its inode table block is dirty) (fs/ext4/ialloc.c,
# find_inode_bit: check_recently_deleted = s_journal == NULL). A home there pays for every file
# deleted nearby minutes before (a test suite's, an earlier benchmark's cleanup): the same
# run measured 0.9 and 2.1 ms per task a minute apart. A journaled ext4 does not do this.
#
#   bench/scale.sh [RESULTS.tsv]            (default: bench/results/scale.tsv)
#
# Environment: DROVER (binary; default build-bench/drover, else build/drover), SIZES
# ("1000 10000 100000"), SHAPES ("chain fanout"), REPS (1), WORK (scratch on disk), HOMES
# ("disk ext4 tmpfs"). `drover run` gets a server config raising the loader's limits (dags:
# max_file_bytes 64 MiB, max_yaml_nodes 4,000,000): by default a DAG file holds at most 1 MiB
# and 100,000 YAML nodes, about 12,000 tasks of these shapes.
# Prints one line per case on stdout (and appends it to RESULTS.tsv):
#   shape  N  tool  rep  seconds  us_per_task
# then, per shape, the per-task ratio of the largest N to the smallest for each tool, and each
# drover figure divided by ninja's and by its floor's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
OUT=${1:-$ROOT/bench/results/scale.tsv}
mkdir -p "$(dirname "$OUT")"
SIZES=${SIZES:-"1000 10000 100000"}
SHAPES=${SHAPES:-"chain fanout"}
REPS=${REPS:-1}
if [[ -z ${DROVER:-} ]]; then
  DROVER=$ROOT/build-bench/drover
  [[ -x $DROVER ]] || DROVER=$ROOT/build/drover
fi
[[ -x $DROVER ]] || { echo "scale.sh: no drover binary at $DROVER (set DROVER=...)" >&2; exit 1; }
DROVER=$(readlink -f "$DROVER")
WORK=${WORK:-$(mktemp -d /tmp/drover-scale.XXXXXX)}
mkdir -p "$WORK"
HOMES=${HOMES:-"disk ext4 tmpfs"}
SHM=$(mktemp -d /dev/shm/drover-scale.XXXXXX)
EXT4=
cleanup() {
  [[ -z $EXT4 ]] || umount "$EXT4" 2>/dev/null || true
  rm -rf "$SHM"
  [[ -n ${KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[scale $(date +%T)] $*" >&2; }

timed() {  # DIR CMD... : seconds, output to DIR/.last.log
  local dir=$1; shift
  local t0=$EPOCHREALTIME
  if ! (cd "$dir" && "$@") > "$dir/.last.log" 2>&1; then
    echo "scale.sh: failed in $dir: $*" >&2; tail -5 "$dir/.last.log" >&2; return 1
  fi
  local t1=$EPOCHREALTIME
  $PY -c "print('%.4f' % ($t1 - $t0))"
}

log "drover=$DROVER work=$WORK sizes=$SIZES load=$(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(date -Is) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)" \
     "load $(cut -d' ' -f1-3 /proc/loadavg) disk $(df -T "$WORK" | awk 'NR==2 {print $2}')" >> "$OUT"
if [[ " $HOMES " == *" ext4 "* ]]; then
  # Inodes for the largest run: 6 per try, and the graphs' own files.
  max_n=0
  for n in $SIZES; do ((n > max_n)) && max_n=$n; done
  if [[ $(id -u) == 0 ]] && truncate -s 16G "$WORK/ext4.img" &&
     mkfs.ext4 -q -F -N $((max_n * 8 + 100000)) "$WORK/ext4.img" &&
     mkdir -p "$WORK/ext4" && mount -o loop "$WORK/ext4.img" "$WORK/ext4"; then
    EXT4=$WORK/ext4
  else
    log "no journaled ext4 (needs root and mount -o loop): its rows are skipped"
    HOMES=${HOMES//ext4/}
  fi
fi
RES=$WORK/results.tsv
: > "$RES"
gcc -O2 -o "$WORK/floor" "$ROOT/bench/floor.c"
CONFIG=$WORK/config.yaml
printf 'dags:\n  max_file_bytes: 67108864\n  max_yaml_nodes: 4000000\n' > "$CONFIG"
chmod 600 "$CONFIG"  # a server config may hold secrets: drover warns when others can read it
row() {  # SHAPE N TOOL REP SECONDS TASKS
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$($PY -c "print('%.1f' % ($5 * 1e6 / $6))")" | tee -a "$RES"
}
for shape in $SHAPES; do
  for n in $SIZES; do
    g=$WORK/$shape-$n
    $PY "$ROOT/bench/gen_dags.py" graph "$shape" "$n" "$g"
    if [[ $shape == chain ]]; then tasks=$n par=1; else tasks=$((n + 2)) par=2; fi
    for rep in $(seq "$REPS"); do
      log "$shape $n rep $rep: ninja"
      rm -f "$g/.ninja_log" "$g/.ninja_deps"
      # ninja walks a chain's dependencies recursively: 100,000 deep needs more than 8 MiB of
      # stack (it dies of SIGSEGV at the default limit).
      if s=$(ulimit -s unlimited && timed "$g" ninja -j2 -f build.ninja); then
        row "$shape" "$n" ninja_j2 "$rep" "$s" "$tasks"
      fi
      row "$shape" "$n" floor "$rep" "$("$WORK/floor" "$tasks" "$par")" "$tasks"
      row "$shape" "$n" floor_durable "$rep" "$("$WORK/floor" "$tasks" "$par" "$WORK/floor.log")" \
        "$tasks"
      if [[ -n $EXT4 ]]; then
        row "$shape" "$n" floor_durable_ext4 "$rep" \
          "$("$WORK/floor" "$tasks" "$par" "$EXT4/floor.log")" "$tasks"
      fi
      for where in $HOMES; do
        case $where in
          disk) h=$WORK/home-$shape-$n-$rep ;;
          ext4) h=$EXT4/home-$shape-$n-$rep ;;
          *) h=$SHM/home-$shape-$n-$rep ;;
        esac
        log "$shape $n rep $rep: drover run (home on $where)"
        s=$(timed "$g" "$DROVER" run dag.yaml --home "$h" --slots 2 -q --config "$CONFIG") || continue
        row "$shape" "$n" "drover_$where" "$rep" "$s" "$tasks"
        if [[ $where == tmpfs ]]; then rm -rf "$h"; fi  # memory
      done
    done
  done
done
cat "$RES" >> "$OUT"
# Per shape and tool: best per-task time at each N, and largest/smallest.
$PY - "$RES" <<'PYEOF'
import collections, sys
best = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    shape, n, tool, rep, s, us = line.split("\t")
    k = (shape, tool)
    best[k][int(n)] = min(best[k].get(int(n), 1e18), float(us))
for (shape, tool), by_n in sorted(best.items()):
    ns = sorted(by_n)
    row = "  ".join("%d: %.1f us" % (n, by_n[n]) for n in ns)
    ratio = by_n[ns[-1]] / by_n[ns[0]] if len(ns) > 1 else 1.0
    print("%-7s %-14s %s  (%d/%d per task: %.2fx)" % (shape, tool, row, ns[-1], ns[0], ratio))
floors = {"drover_disk": "floor_durable", "drover_ext4": "floor_durable_ext4",
          "drover_tmpfs": "floor"}
for (shape, tool), by_n in sorted(best.items()):
    if tool not in floors: continue
    for n in sorted(by_n):
        ninja = best[(shape, "ninja_j2")].get(n)
        floor = best[(shape, floors[tool])].get(n)
        if ninja and floor:
            print("%-7s %-14s %6d: %.2fx ninja_j2, %.2fx %s" %
                  (shape, tool, n, by_n[n] / ninja, by_n[n] / floor, floors[tool]))
PYEOF
