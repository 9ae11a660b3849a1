#!/usr/bin/python3
"""Evaluate the trained click model on the holdout set: the quality gate of weekly_retrain.

Loads MODEL/model.pkl (from train.py) and DATA/holdout.csv (from make_data.py), scores
the holdout rows, and writes --out/metrics.json (auc, log loss, accuracy, click rate,
the training auc for comparison). Exits 1 when the holdout auc is below --min-auc, so
the run fails and no predictions are written from a bad model.
"""

import argparse
import os
import pickle
import sys

from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="folder written by train.py")
    p.add_argument("--data", required=True, help="folder written by make_data.py")
    p.add_argument("--min-auc", type=float, default=0.70,
                   help="fail when the holdout auc is below this (default 0.70)")
    p.add_argument("--out", required=True, help="output folder (created)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    with open(os.path.join(args.model, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    trained = common.read_json(os.path.join(args.model, "metrics.json"))
    df = common.read_events(os.path.join(args.data, "holdout.csv"))
    y = df[common.LABEL]
    p = model.predict_proba(common.features(df))[:, 1]

    auc = common.rounded(roc_auc_score(y, p))
    report = {
        "auc": auc,
        "log_loss": common.rounded(log_loss(y, p)),
        "accuracy": common.rounded(accuracy_score(y, p >= 0.5)),
        "click_rate": common.rounded(y.mean()),
        "rows": int(len(df)),
        "train_auc": trained.get("auc"),
        "min_auc": args.min_auc,
        "passed": bool(auc >= args.min_auc),
    }
    common.write_json(os.path.join(args.out, "metrics.json"), report)
    print(f"evaluate: holdout auc {auc:.4f} (training {trained.get('auc')}), "
          f"log loss {report['log_loss']:.4f}, accuracy {report['accuracy']:.4f} "
          f"on {report['rows']} rows")
    if not report["passed"]:
        print(f"evaluate: FAILED the quality gate: auc {auc:.4f} is below the minimum "
              f"{args.min_auc:.4f}", file=sys.stderr)
        return 1
    print(f"evaluate: passed the quality gate (auc >= {args.min_auc:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
