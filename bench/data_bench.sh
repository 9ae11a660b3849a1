#!/bin/sh
# Snapshot benchmarks (issue 4): (a) hashing a 4 GB dataset with `drover snapshot add`, page
# cache warm, in GB/s per core beside sha256sum, md5sum (DVC hashes with MD5) and OpenSSL's
# SHA-256 (the floor) on the same files, and a first snapshot into an empty store beside
# `cp -r` + sync; (b) re-snapshot of 100,000 unchanged small files (target <= 1 s). Each figure is the
# median of RUNS runs. Data lives under $TMPDIR (default /tmp) and is deleted at the end.
# Usage: bench/data_bench.sh [DROVER] [GB] [SMALL_FILES] [RUNS]
set -eu
DROVER=$(realpath "${1:-./build/drover}")
GB=${2:-4}
SMALL=${3:-100000}
RUNS=${4:-3}
DIR=${TMPDIR:-/tmp}/drover-data-bench.$$
CORES=$(nproc)
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT INT TERM

# Wall seconds of a command (stdout and stderr discarded).
secs() {
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { echo "scale=3; $GB * 1.073741824 / $1 / $2" | bc -l; }  # GB/s (10^9) per core

# (a) GB GiB in 64 MiB files of random bytes.
mkdir -p "$DIR/big"
n=$((GB * 16))
i=0
while [ $i -lt $n ]; do
  openssl rand -out "$DIR/big/part-$i.bin" $((64 << 20)) 2> /dev/null ||
    head -c $((64 << 20)) /dev/urandom > "$DIR/big/part-$i.bin"
  i=$((i + 1))
done
g++ -O2 -o "$DIR/hash_floor" "$(dirname "$0")/hash_floor.cpp" -lcrypto -lpthread
cat "$DIR"/big/* > /dev/null  # warm the page cache
cat "$DIR"/big/* > /dev/null

t_sha=""; t_md5=""; t_shap=""; t_ossl=""; t_floor=""; t_hash=""; t_add=""; t_cp=""; t_readd=""; t_floor1=""; t_hash1=""
r=0
while [ $r -lt "$RUNS" ]; do
  t_sha="$t_sha $(secs sh -c "sha256sum '$DIR'/big/* ")"
  t_md5="$t_md5 $(secs sh -c "md5sum '$DIR'/big/*")"
  t_shap="$t_shap $(secs sh -c "ls '$DIR'/big/* | xargs -P $CORES -n 8 sha256sum")"
  # OpenSSL's SHA-256 (what drover links), one process per core.
  t_ossl="$t_ossl $(secs sh -c "ls '$DIR'/big/* | xargs -P $CORES -n 8 openssl dgst -sha256")"
  # The floor: read + OpenSSL SHA-256 in one process, a thread per core, nothing else.
  t_floor="$t_floor $("$DIR/hash_floor" "$CORES" "$DIR"/big/*)"
  # First snapshot into an empty store: hash, then copy every (new) blob in, then syncfs.
  rm -rf "$DIR/home"
  sync
  t_add="$t_add $(secs "$DROVER" snapshot add "$DIR/big" --dataset big --home "$DIR/home")"
  # Its floor: copying the same files and syncing, without hashing.
  rm -rf "$DIR/copy"
  sync
  t_cp="$t_cp $(secs sh -c "cp -r '$DIR/big' '$DIR/copy' && sync -f '$DIR/copy'")"
  rm -rf "$DIR/copy"
  sync  # no writeback of the copy running beside what follows
  # Hashing alone: the blobs are stored already, the stat cache is dropped, so every byte
  # is read and hashed and nothing is written.
  rm -rf "$DIR/home/cache"
  t_hash="$t_hash $(secs "$DROVER" snapshot add "$DIR/big" --dataset big --home "$DIR/home")"
  t_readd="$t_readd $(secs "$DROVER" snapshot add "$DIR/big" --dataset big --home "$DIR/home")"
  # The same two on one core (taskset): the per-core rate without two threads sharing.
  t_floor1="$t_floor1 $(taskset -c 0 "$DIR/hash_floor" 1 "$DIR"/big/*)"
  rm -rf "$DIR/home/cache"
  t_hash1="$t_hash1 $(secs taskset -c 0 "$DROVER" snapshot add "$DIR/big" --dataset big --home "$DIR/home")"
  r=$((r + 1))
done
m_sha=$(echo "$t_sha" | median); m_md5=$(echo "$t_md5" | median)
m_shap=$(echo "$t_shap" | median); m_ossl=$(echo "$t_ossl" | median)
m_floor=$(echo "$t_floor" | median); m_floor1=$(echo "$t_floor1" | median)
m_hash1=$(echo "$t_hash1" | median)
m_hash=$(echo "$t_hash" | median); m_add=$(echo "$t_add" | median)
m_cp=$(echo "$t_cp" | median); m_readd=$(echo "$t_readd" | median)
echo "machine: $CORES cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start of (a): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(a) ${GB} GiB in $n files, page cache warm, median of $RUNS"
echo "  sha256sum (1 core):              ${m_sha} s  $(rate "$m_sha" 1) GB/s per core   runs:$t_sha"
echo "  md5sum (1 core):                 ${m_md5} s  $(rate "$m_md5" 1) GB/s per core   runs:$t_md5"
echo "  xargs -P $CORES sha256sum:           ${m_shap} s  $(rate "$m_shap" "$CORES") GB/s per core   runs:$t_shap"
echo "  xargs -P $CORES openssl dgst -sha256: ${m_ossl} s  $(rate "$m_ossl" "$CORES") GB/s per core   runs:$t_ossl"
echo "  floor: read + OpenSSL SHA-256, $CORES threads (bench/hash_floor.cpp): ${m_floor} s  $(rate "$m_floor" "$CORES") GB/s per core   runs:$t_floor"
echo "  drover snapshot add, hashing ($CORES thr, blobs stored, no stat cache): ${m_hash} s  $(rate "$m_hash" "$CORES") GB/s per core   runs:$t_hash"
echo "  floor on 1 core (taskset -c 0, 1 thread): ${m_floor1} s  $(rate "$m_floor1" 1) GB/s   runs:$t_floor1"
echo "  drover snapshot add, hashing on 1 core (taskset -c 0): ${m_hash1} s  $(rate "$m_hash1" 1) GB/s   runs:$t_hash1"
echo "  drover snapshot add, first (hash + store + syncfs): ${m_add} s  $(rate "$m_add" "$CORES") GB/s per core   runs:$t_add"
echo "  cp -r + sync (store floor, no hashing):  ${m_cp} s   runs:$t_cp"
echo "  drover snapshot add, unchanged: ${m_readd} s   runs:$t_readd"
rm -rf "$DIR/big" "$DIR/home"

# (b) SMALL files of 1 KiB in folders of 1,000.
/usr/bin/python3 - "$DIR/small" "$SMALL" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "wb") as f:
        f.write(os.urandom(512).hex().encode())
PY
t_first=$(secs "$DROVER" snapshot add "$DIR/small" --dataset small --home "$DIR/home")
t_re=""
r=0
while [ $r -lt "$RUNS" ]; do
  t_re="$t_re $(secs "$DROVER" snapshot add "$DIR/small" --dataset small --home "$DIR/home")"
  r=$((r + 1))
done
t_find=$(secs find "$DIR/small" -type f -newer "$DIR/home")
echo "(b) $SMALL files of 1 KiB, median of $RUNS"
echo "  first snapshot add:            ${t_first} s"
echo "  re-snapshot, unchanged:        $(echo "$t_re" | median) s (target <= 1 s)   runs:$t_re"
echo "  find -newer (stat every file): ${t_find} s"
