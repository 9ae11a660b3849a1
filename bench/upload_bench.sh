#!/usr/bin/env bash
# Upload to Redis versus redis-benchmark on the same server, in the same run (DESIGN.md §9:
# within 2x of pipelined SET throughput). Starts a throw-away redis-server on a free
# loopback port, generates N rows of ~100-byte values, times `drover run` of one upload
# task (the try's own write+flip time from its log, and the whole run), then
# `redis-benchmark -P 1000 -t set -d 100 -n N -q` (as specified: one key overwritten) and
# with -r N (N distinct keys, as an upload writes). Prints keys/s of each, the ratios, and
# the try's peak RSS (VmHWM, polled from /proc).
# Usage: bench/upload_bench.sh [BUILD_DIR] [ROWS]   (default build, 1000000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rows=${2:-1000000}
drover=$build/drover
[ -x "$drover" ] || { echo "no $drover: build it first" >&2; exit 2; }
work=$(mktemp -d /tmp/drover-upload-bench-XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
/usr/bin/python3 - "$work/p.jsonl" "$rows" <<'PY'
import sys
pad = "x" * 62
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"id":"k%d","score":%d.25,"pad":"%s"}\n' % (i, i, pad))
PY
cat >"$work/up.yaml" <<YAML
dag: upload_bench
tasks:
  up:
    type: upload
    with: {target: "redis://127.0.0.1:$port/0", prefix: bench, file: "$work/p.jsonl", key: id}
YAML
peak=0
start=$(date +%s.%N)
"$drover" run "$work/up.yaml" --home "$work/home" --project-dir "$work" --json >"$work/rec.json" &
dpid=$!
# The try's peak RSS (VmHWM) from /proc/PID/status, its pid read from the try's pid file;
# bash builtins only, so the polling costs the machine next to nothing.
while kill -0 $dpid 2>/dev/null; do
  for pidfile in "$work"/home/runs/*/up.1/pid; do
    [ -r "$pidfile" ] || continue
    read -r tpid _ <"$pidfile" || continue
    while read -r k v _; do
      [ "$k" = "VmHWM:" ] && [ "$v" -gt "$peak" ] && peak=$v
    done <"/proc/$tpid/status" 2>/dev/null || true
  done
  sleep 0.1
done
wait $dpid
end=$(date +%s.%N)
log=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t=[t for t in r["tasks"] if t["task"]=="up"][0]; print(t["log"])' "$work/rec.json")
write_ms=$(sed -n 's/.*, in \([0-9]*\) ms; flipped.*/\1/p' "$log")
flip_ms=$(sed -n 's/.*; flipped from .* in \([0-9.]*\) ms.*/\1/p' "$log")
run_s=$(/usr/bin/python3 -c "print(round($end - $start, 3))")
bytes=$(stat -c %s "$work/p.jsonl")
redis-cli -p "$port" flushall >/dev/null
b1=$(redis-benchmark -p "$port" -P 1000 -t set -d 100 -n "$rows" -q 2>/dev/null | tr '\r' '\n' | grep -o 'SET: [0-9.]* requests per second' | tail -1 | awk '{print $2}')
redis-cli -p "$port" flushall >/dev/null
b2=$(redis-benchmark -p "$port" -P 1000 -t set -d 100 -n "$rows" -r "$rows" -q 2>/dev/null | tr '\r' '\n' | grep -o 'SET: [0-9.]* requests per second' | tail -1 | awk '{print $2}')
/usr/bin/python3 - "$rows" "$bytes" "$write_ms" "$run_s" "$b1" "$b2" "$peak" "$flip_ms" <<'PY'
import sys
rows, size, write_ms, run_s, b1, b2, peak, flip_ms = sys.argv[1:]
rows = int(rows); up = rows / (int(write_ms) / 1000); whole = rows / float(run_s)
b1 = float(b1); b2 = float(b2)
print(f"rows: {rows} ({int(size) / 1e6:.1f} MB of JSON lines)")
print(f"drover upload (write + flip, from the try's log): {up:,.0f} keys/s ({write_ms} ms)")
print(f"drover run, whole (start, upload, record):       {whole:,.0f} keys/s ({run_s} s)")
print(f"redis-benchmark -P 1000 -t set -d 100:           {b1:,.0f} keys/s  ratio {up / b1:.2f}")
print(f"redis-benchmark ... -r {rows} (distinct keys):   {b2:,.0f} keys/s  ratio {up / b2:.2f}")
print(f"peak RSS of the try: {int(peak) / 1024:.1f} MiB")
print(f"flip (MULTI/EXEC of the pointer, versions, meta, events): {flip_ms} ms")
PY
