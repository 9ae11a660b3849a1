#!/usr/bin/python3
"""Write predictions of the click model for fresh events: the predict step of daily_inference.

Loads MODEL/model.pkl (a click_model version's artifact, from train.py; the DAG names the
version under `uses:`) and DATA/score.csv (from make_data.py) and writes
--out/predictions.jsonl, one JSON object per line keyed by the event id:

  {"event_id": "e7-0000012", "user_id": 2362, "item_id": 803, "score": 0.4187, "clicked": false}

plus --out/summary.json (row count, mean score, the share predicted to click, and the
run id that produced them, for lineage).
"""

import argparse
import json
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="folder holding model.pkl (a registered version's artifacts)")
    p.add_argument("--data", required=True, help="folder written by make_data.py")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="score at or above which an event is predicted to click (default 0.5)")
    p.add_argument("--run-id", default=os.environ.get("DROVER_RUN_ID", ""),
                   help="recorded in summary.json (default $DROVER_RUN_ID)")
    p.add_argument("--out", required=True, help="output folder (created)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    with open(os.path.join(args.model, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    df = common.read_events(os.path.join(args.data, "score.csv"), need_label=False)
    scores = model.predict_proba(common.features(df))[:, 1]

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "predictions.jsonl")
    with open(path, "w") as f:
        for event_id, user_id, item_id, s in zip(df[common.ID], df["user_id"], df["item_id"],
                                                 scores):
            f.write(json.dumps({"event_id": event_id, "user_id": int(user_id),
                                "item_id": int(item_id), "score": common.rounded(s),
                                "clicked": bool(s >= args.threshold)}) + "\n")
    summary = {
        "rows": int(len(df)),
        "mean_score": common.rounded(scores.mean()),
        "predicted_click_share": common.rounded((scores >= args.threshold).mean()),
        "threshold": args.threshold,
        "run_id": args.run_id,
    }
    common.write_json(os.path.join(args.out, "summary.json"), summary)
    print(f"predict: wrote {summary['rows']} predictions to {path} "
          f"(mean score {summary['mean_score']:.4f}, "
          f"{summary['predicted_click_share']:.1%} predicted to click)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
