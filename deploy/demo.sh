#!/usr/bin/env bash
# The Drover demo: runs the example DAG dags/weekly_retrain.yaml once, here, without a
# daemon (make data -> train -> evaluate -> predict, Python + scikit-learn), then shows
# the run's record: every task's command, state, and inputs/outputs with their SHA-256.
# Then runs it again on drifted data, where the evaluate step's quality gate fails.
#
#   deploy/demo.sh                    # after building build/drover
#   DROVER=path/to/drover deploy/demo.sh
#   DEMO_HOME=/tmp/demo deploy/demo.sh
#
# Idempotent: DEMO_HOME (default ./.drover-demo) is recreated on every call.
# Exit codes: 0 the demo ran as expected, 1 it did not, 2 a prerequisite is missing.
set -euo pipefail

here=$(pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

drover=${DROVER:-build/drover}
# A relative $DROVER is taken from where the script was called, then from the repo root.
if [[ $drover != /* ]]; then
  if [[ -x $here/$drover ]]; then drover=$here/$drover; else drover=$root/$drover; fi
fi
demo_home=${DEMO_HOME:-$root/.drover-demo}
[[ $demo_home == /* ]] || demo_home=$here/$demo_home
python=/usr/bin/python3

if [[ ! -x $drover ]]; then
  echo "demo: no drover binary at $drover" >&2
  echo "demo: build it first: cmake -S . -B build -G Ninja && ninja -C build drover" >&2
  exit 2
fi
if ! "$python" -c 'import sklearn, pandas, numpy' 2>/dev/null; then
  echo "demo: $python cannot import sklearn, pandas and numpy; run deploy/bootstrap.sh" >&2
  exit 2
fi
# Recreate DEMO_HOME, refusing to delete a folder that is not a drover home.
if [[ -e $demo_home ]]; then
  if [[ -d $demo_home && ( -e $demo_home/drover.db || -z $(ls -A "$demo_home") ) ]]; then
    rm -rf "$demo_home"
  else
    echo "demo: $demo_home exists and is not a drover home; set DEMO_HOME elsewhere" >&2
    exit 2
  fi
fi
mkdir -p "$demo_home"

cd "$root"
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "drover lint dags/"
"$drover" lint dags/

step "drover run dags/weekly_retrain.yaml --home $demo_home --json"
echo "make_data -> train -> evaluate -> predict (about 10 s) ..."
record=$demo_home/weekly_retrain-1.json
started=$(date +%s)
if ! "$drover" run dags/weekly_retrain.yaml --home "$demo_home" --json >"$record"; then
  echo "demo: the run failed; its record:" >&2
  cat "$record" >&2
  exit 1
fi
echo "done in $(( $(date +%s) - started )) s; the full record is $record"

step "The run record"
"$python" - "$record" "$demo_home" <<'PY'
import json, os, sys

rec = json.load(open(sys.argv[1]))
home = sys.argv[2]

def size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

def blob(sha):
    return os.path.join(home, "blobs", sha[:2], sha[2:])

git = rec.get("git") or {}
print(f"run       {rec['id']}   dag {rec['dag']}   state {rec['state']}")
print(f"trigger   {rec['trigger']['kind']} by {rec['trigger']['user']}"
      f"   logical date {rec['logical_date']}")
print(f"dag_hash  {rec['dag_hash']}")
print(f"git       {git.get('commit')}{'  (dirty work tree)' if git.get('dirty') else ''}")
print("params    " + "  ".join(f"{k}={json.dumps(v)}" for k, v in rec["params"].items()))
outputs = {}
for t in rec["tasks"]:
    print(f"\n{t['task']}  try {t['try']}  {t['state']}  exit {t['exit_code']}"
          f"  {t.get('duration_s') or 0:.1f}s   log {t['log']}")
    print("    $ " + " ".join(t.get("command") or []))
    ins = {}
    for f in t.get("inputs", []):
        ins.setdefault(f.get("from_task"), []).append(f)
    for up, files in ins.items():
        print(f"    in   {len(files)} file(s) from {up}")
    for f in t.get("outputs", []):
        outputs[f["path"]] = f
        print(f"    out  {f['path']:<28} {size(f['size']):>10}  sha256 {f['sha256'][:16]}")

# The outputs live in the content-addressed store: read two back by their hash.
report = outputs.get("report/metrics.json")
if report:
    m = json.load(open(blob(report["sha256"])))
    print(f"\nreport/metrics.json (from {blob(report['sha256'])}):")
    print(f"    holdout auc {m['auc']}  log loss {m['log_loss']}  accuracy {m['accuracy']}"
          f"  (gate: auc >= {m['min_auc']}, passed: {m['passed']})")
preds = outputs.get("predictions/predictions.jsonl")
if preds:
    with open(blob(preds["sha256"])) as f:
        head = [next(f).rstrip() for _ in range(3)]
    print(f"predictions/predictions.jsonl (first 3 lines):")
    for line in head:
        print("    " + line)
PY

step "drover run dags/weekly_retrain.yaml -p drift=1 --home $demo_home   (drifted data)"
echo "The same DAG on shifted events. The first run tagged its events 'reference', so"
echo "drift_check compares the new events with them and alerts the DAG's on_drift channel;"
echo "the model is worse, evaluate's gate fails the run and alerts on_failure. The alerts go"
echo "to a local webhook receiver (a stand-in for Slack) named in $demo_home/config.yaml."
hook_out=$demo_home/webhook.jsonl
hook_port=$demo_home/webhook.port
"$python" "$root/tests/scheduler/alert_receivers.py" webhook "$hook_out" >"$hook_port" 2>/dev/null &
hook_pid=$!
trap 'kill $hook_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $hook_port ]] && break; sleep 0.1; done
port=$(head -n1 "$hook_port")
cat >"$demo_home/config.yaml" <<EOT
alerts:
  channels:
    ml-oncall: {type: webhook, url: "http://127.0.0.1:$port/slack"}
  retry_delay: 200ms
EOT
chmod 600 "$demo_home/config.yaml"
set +e
"$drover" run dags/weekly_retrain.yaml -p drift=1 --home "$demo_home"
rc=$?
set -e
if [[ $rc -ne 1 ]]; then
  echo "demo: expected the drifted run to fail with exit 1, got $rc" >&2
  exit 1
fi
log=$demo_home/runs/weekly_retrain-2/evaluate/1/log   # evaluate has retries: 0
if [[ -f $log ]]; then
  echo "evaluate's log ($log):"
  sed 's/^/    /' "$log"
fi
echo "exit code $rc: the run failed at the gate, predict never ran, and the record says so."
echo
echo "Alerts received by the webhook:"
"$python" - "$hook_out" <<'PY'
import json, sys
kinds = set()
for line in open(sys.argv[1]):
    body = json.loads(json.loads(line)["body"])
    kinds.add(body["kind"])
    print("    " + body["text"])
missing = {"drift", "task_failed"} - kinds
if missing:
    sys.exit(f"demo: expected alerts {sorted(missing)} at the webhook")
PY

step "Next"
cat <<EOT
  The record:     $record (the store: $demo_home/drover.db,
                  logs: $demo_home/runs/RUN/TASK/TRY/log, outputs: $demo_home/blobs/)
  Run it again:   $drover run dags/weekly_retrain.yaml -p window_days=7 --home $demo_home
  The DAG:        dags/weekly_retrain.yaml (format: docs/dag-format.md, demo: docs/demo.md)
EOT
