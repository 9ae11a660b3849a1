#!/bin/sh
# Drift benchmark (issue 4): 1,000,000 reference + 1,000,000 current rows x 50 numeric
# features, CSV parsing included, `drover drift` vs a pandas + scipy script computing the same
# statistics (KS, Wasserstein, PSI/JS bins, chi-square) on the same files, one core each.
# Reports wall time, CPU time (user + sys: the fairer figure on a shared, loaded machine) and
# peak RSS (/usr/bin/time -v); drover runs RUNS times (the peer once: it is slow), each line
# is one run. Usage: [KEEP=1] bench/drift_bench.sh [DROVER] [ROWS] [RUNS]
set -eu
DROVER=${1:-./build/drover}
ROWS=${2:-1000000}
RUNS=${3:-3}
DIR=${TMPDIR:-/tmp}/drover-drift-bench
mkdir -p "$DIR"
if [ ! -f "$DIR/ref_$ROWS.csv" ]; then
  /usr/bin/python3 - "$DIR" "$ROWS" <<'PY'
import sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
for name, shift in (("ref", 0.0), ("cur", 0.05)):
    x = rng.normal(shift, 1.0, size=(n, 50)).round(6)
    np.savetxt(f"{d}/{name}_{n}.csv", x, delimiter=",", fmt="%.6f",
               header=",".join(f"f{i}" for i in range(50)), comments="")
PY
fi
cat > "$DIR/peer.py" <<'PY'
import sys, numpy as np, pandas as pd
from scipy import stats
from scipy.spatial import distance
ref, cur = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
for c in ref.columns:
    a, b = ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy()
    ks = stats.ks_2samp(a, b)
    w = stats.wasserstein_distance(a, b) / max(np.std(a), 0.001)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    ca, cb = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
    sa, sb = ca / len(a), cb / len(b)
    js = distance.jensenshannon(sa, sb)
    keep = (ca + cb) > 0
    chi = stats.chi2_contingency(np.array([ca[keep], cb[keep]]), correction=False)
    pa, pb = np.where(sa == 0, 1e-4, sa), np.where(sb == 0, 1e-4, sb)
    psi = np.sum((pb - pa) * np.log(pb / pa))
print("done")
PY
run() {
  label=$1; shift
  /usr/bin/time -v taskset -c 0 "$@" > /dev/null 2> "$DIR/$label.time" || true
  wall=$(grep "Elapsed (wall clock)" "$DIR/$label.time" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$DIR/$label.time" | awk '{print $NF}')
  usr=$(grep "User time" "$DIR/$label.time" | awk '{print $NF}')
  sys=$(grep "System time" "$DIR/$label.time" | awk '{print $NF}')
  echo "$label: wall $wall, cpu $(echo "$usr + $sys" | bc -l) s, peak RSS ${rss} KB"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ $i -lt "$RUNS" ]; do
  run drover "$DROVER" drift --reference "$DIR/ref_$ROWS.csv" --current "$DIR/cur_$ROWS.csv" --json
  i=$((i + 1))
done
run pandas_scipy /usr/bin/python3 "$DIR/peer.py" "$DIR/ref_$ROWS.csv" "$DIR/cur_$ROWS.csv"
[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"  # KEEP=1 keeps the generated files for another run
