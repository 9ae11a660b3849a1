#!/usr/bin/env bash
# The Drover demo, here, without a daemon (docs/demo.md): the story of dags/weekly_retrain.yaml
# and dags/daily_inference.yaml against a local redis-server on a free loopback port.
#   1. retrain: make data -> snapshot -> drift check -> train (registers click_model/1) ->
#      validate -> promote (click_model@production = 1); the run record by SHA-256
#   2. inference: predict with click_model@production -> upload to Redis; a score read back
#   3. retrain on drifted data: a drift alert, click_model/2 fails its gate, nothing promoted
#   4. retrain on fresh data: click_model/3 passes its gates vs production and is promoted
#   5. inference again: the new model's scores, a new set in Redis, flipped in one step
#   6. rollback: production back to 1, the Redis set back; models history shows every move
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
for tool in redis-server redis-cli; do
  if ! command -v $tool >/dev/null; then
    echo "demo: no $tool on PATH; run deploy/bootstrap.sh" >&2
    exit 2
  fi
done
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
die() { echo "demo: $*" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A free loopback port: bind port 0, read what the kernel gave, let it go.
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Local services: redis-server (the serving store) and a webhook (a stand-in for Slack)"
redis_port=$(free_port)
redis_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$demo_home/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --requirepass "$redis_password" \
  --save "" --appendonly no --dir "$demo_home/redis" --daemonize no \
  >"$demo_home/redis/redis.log" 2>&1 &
pids+=($!)
rcli() { REDISCLI_AUTH=$redis_password redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
for _ in $(seq 100); do [[ $(rcli ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
[[ $(rcli ping 2>/dev/null) == PONG ]] || die "redis-server did not start (see $demo_home/redis/redis.log)"
echo "redis-server on 127.0.0.1:$redis_port (password in $demo_home/config.yaml as the secret redis_password)"

hook_out=$demo_home/webhook.jsonl
hook_port=$demo_home/webhook.port
"$python" "$root/tests/scheduler/alert_receivers.py" webhook "$hook_out" >"$hook_port" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [[ -s $hook_port ]] && break; sleep 0.1; done
[[ -s $hook_port ]] || die "the webhook receiver did not start"
port=$(head -n1 "$hook_port")
echo "webhook on 127.0.0.1:$port (the DAGs' alert channel ml-oncall)"
cat >"$demo_home/config.yaml" <<EOT
alerts:
  channels:
    ml-oncall: {type: webhook, url: "http://127.0.0.1:$port/slack"}
  retry_delay: 200ms
secrets:
  redis_password: "$redis_password"
EOT
chmod 600 "$demo_home/config.yaml"

step "drover lint dags/"
"$drover" lint dags/


home=(--home "$demo_home")
# Runs a DAG once, here, writing its record to $demo_home/RUN.json; $1 the exit code expected.
run_dag() {
  local want=$1 dag=$2
  shift 2
  local out=$demo_home/last.json rc=0 started
  started=$(date +%s)
  "$drover" run "dags/$dag.yaml" "${home[@]}" --json "$@" >"$out" || rc=$?
  [[ -s $out ]] || die "drover run dags/$dag.yaml wrote no record (exit $rc)"
  local id
  id=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$out")
  mv "$out" "$demo_home/$id.json"
  record=$demo_home/$id.json
  echo "$id: exit $rc in $(( $(date +%s) - started )) s; the record is $record"
  if [[ $rc -ne $want ]]; then
    echo "demo: expected exit $want from $dag, got $rc; the record:" >&2
    cat "$record" >&2
    exit 1
  fi
}

# The tasks of a run record: state, and outputs by SHA-256 (or --brief: one line each).
show_record() {
  "$python" - "$record" "$@" <<'PY'
import json, sys

rec = json.load(open(sys.argv[1]))
brief = "--brief" in sys.argv[2:]

def size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

git = rec.get("git") or {}
if not brief:
    print(f"run       {rec['id']}   dag {rec['dag']}   state {rec['state']}")
    print(f"dag_hash  {rec['dag_hash']}")
    print(f"git       {git.get('commit')}{'  (dirty work tree)' if git.get('dirty') else ''}")
    print("params    " + "  ".join(f"{k}={json.dumps(v)}" for k, v in rec["params"].items()))
for name, pin in (rec.get("models") or {}).items():
    print(f"pinned    task {name} uses {pin['ref']} = {pin['name']}/{pin['version']}")
for t in rec["tasks"]:
    vals = t.get("values") or {}
    shown = {k: v for k, v in vals.items() if k in (
        "model", "model_version", "passed", "alias", "previous_version", "drift", "skipped",
        "version", "rows", "dataset")}
    print(f"  {t['task']:<16} {t['state']:<9} {t.get('duration_s') or 0:5.1f}s  "
          + "  ".join(f"{k}={json.dumps(v)}" for k, v in shown.items()))
    if t.get("error"):
        print(f"  {'':<16} error: {t['error']}")
    if brief:
        continue
    for f in t.get("outputs", [])[:4]:
        print(f"  {'':<16}   out {f['path']:<26} {size(f['size']):>9}  sha256 {f['sha256'][:16]}")
PY
}

step "1. drover run dags/weekly_retrain.yaml: the first model"
echo "make_data -> snapshot_events -> drift_check, train -> validate -> promote (a few seconds) ..."
run_dag 0 weekly_retrain
show_record
echo
echo "drift_check was skipped: click_model@production named nothing yet. The gate against"
echo "production passed with a note (nothing to beat), so promote moved the alias to version 1."
"$drover" models show click_model@production "${home[@]}"

step "2. drover run dags/daily_inference.yaml: scores by click_model@production, uploaded to Redis"
run_dag 0 daily_inference -p redis_port="$redis_port"
show_record --brief
current=$(rcli get click_scores:current)
first_key=$(head -n1 "$("$python" -c '
import json, os, sys
rec = json.load(open(sys.argv[1]))
for t in rec["tasks"]:
    for f in t.get("outputs", []):
        if f["path"].endswith("predictions.jsonl"):
            sha = f["sha256"]; print(os.path.join(sys.argv[2], "blobs", sha[:2], sha[2:]))
' "$record" "$demo_home")" | "$python" -c 'import json,sys; print(json.loads(sys.stdin.readline())["event_id"])')
echo "A serving process reads the live set, then a key in it:"
echo "  GET click_scores:current               -> $current"
echo "  GET click_scores:$current:$first_key -> $(rcli get "click_scores:$current:$first_key")"
set1=$current
[[ -n $set1 && -n $(rcli get "click_scores:$set1:$first_key") ]] || die "no prediction in Redis"

step "3. drover run dags/weekly_retrain.yaml -p drift=1: drifted events"
echo "The new events differ from the production model's training data: drift_check alerts"
echo "on_drift, and the model trained on them (click_model/2) fails its gates, so promote"
echo "never runs and the run fails (exit 1)."
run_dag 1 weekly_retrain -p drift=1
show_record --brief
production=$("$drover" models show click_model@production "${home[@]}" --json |
  "$python" -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[[ $production == 1 ]] || die "expected click_model@production to stay 1, it is $production"
echo "click_model@production is still version $production."

step "4. drover run dags/weekly_retrain.yaml -p seed=8 -p n_rows=40000: fresh events"
run_dag 0 weekly_retrain -p seed=8 -p n_rows=40000
show_record --brief
"$drover" models ls "${home[@]}"

step "5. drover run dags/daily_inference.yaml: the new production model's scores"
run_dag 0 daily_inference -p redis_port="$redis_port"
show_record --brief
set2=$(rcli get click_scores:current)
echo "  GET click_scores:current               -> $set2"
echo "  GET click_scores:$set2:$first_key -> $(rcli get "click_scores:$set2:$first_key")"
[[ $set2 != "$set1" ]] || die "the second upload did not flip click_scores:current"

step "6. Rollback: production back to version 1, and its scores back in Redis"
"$drover" models alias click_model production 1 "${home[@]}" \
  --reason "rollback: CTR fell in the A/B test"
DROVER_TARGET_PASSWORD=$redis_password "$drover" predictions rollback \
  "redis://127.0.0.1:$redis_port/0" --prefix click_scores --reason "rollback with the model"
back=$(rcli get click_scores:current)
echo "  GET click_scores:current               -> $back"
echo "  GET click_scores:$back:$first_key -> $(rcli get "click_scores:$back:$first_key")"
[[ $back == "$set1" ]] || die "predictions rollback did not flip back to $set1"
DROVER_TARGET_PASSWORD=$redis_password "$drover" predictions ls \
  "redis://127.0.0.1:$redis_port/0" --prefix click_scores

step "drover models history click_model"
"$drover" models history click_model "${home[@]}"
events=$("$drover" models history click_model "${home[@]}" --json |
  "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
[[ $events == 3 ]] || die "expected 3 alias events (promote 1, promote 3, rollback), got $events"

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
  Records:        $demo_home/RUN.json (the store: $demo_home/drover.db,
                  logs: $demo_home/runs/RUN/TASK.TRY/log, outputs: $demo_home/blobs/)
  A version:      $drover models show click_model/3 --home $demo_home --json
  Its artifacts:  $drover models download click_model@production /tmp/model --home $demo_home
  The DAGs:       dags/weekly_retrain.yaml, dags/daily_inference.yaml (docs/dag-format.md,
                  docs/models.md, docs/demo.md)
EOT
