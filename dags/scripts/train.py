#!/usr/bin/python3
"""Train the click model of the weekly_retrain demo DAG (a `train` task: docs/models.md).

Reads DATA/train.csv and DATA/holdout.csv (from make_data.py). Fits a scikit-learn
pipeline (one-hot device and hour, log price, scaled counts, logistic regression) for each
regularisation strength of a small sweep, logging each one's validation auc as a step
metric, keeps the best, and scores it on the holdout. Writes into --out (default: the work
dir, where the train task collects them):

  model.pkl     the fitted pipeline (pickle): the registered version's artifact
  metrics.json  the final metrics, a JSON object of numbers: holdout auc, log loss,
                accuracy, click rate, row counts, the chosen C (what the gates read)

Run by drover, `drover` (python/drover, on PYTHONPATH) records the step metrics and the
interpreter's and libraries' versions with the model version; run by hand it only writes
the two files.
"""

import argparse
import os
import pickle
import sys
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

try:
    from drover import log_environment, log_metric, save_metrics
except ImportError:  # run by hand without drover's python/ on PYTHONPATH
    def log_metric(name, value, step=None):
        pass

    def log_environment():
        pass

    def save_metrics(metrics, path="metrics.json"):
        common.write_json(path, metrics)

SWEEP = [0.01, 0.1, 1.0, 10.0]  # inverse regularisation strengths tried, in this order


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder written by make_data.py")
    p.add_argument("--out", default=".", help="output folder (default: the work dir)")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def build_model(c, seed):
    encode = ColumnTransformer([
        ("device", OneHotEncoder(handle_unknown="ignore"), ["device"]),
        ("hour", OneHotEncoder(handle_unknown="ignore"), ["hour"]),
        ("log_price", Pipeline([("log", FunctionTransformer(np.log1p)),
                                ("scale", StandardScaler())]), ["price"]),
        ("counts", StandardScaler(),
         ["sessions_7d", "minutes_watched", "item_popularity", "days_since_last"]),
    ])
    regression = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    return Pipeline([("encode", encode), ("regression", regression)])


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    df = common.read_events(os.path.join(args.data, "train.csv"))
    x, y = common.features(df), df[common.LABEL]
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, random_state=args.seed,
                                                  stratify=y)
    best = None
    for step, c in enumerate(SWEEP):
        model = build_model(c, args.seed).fit(x_fit, y_fit)
        auc = roc_auc_score(y_val, model.predict_proba(x_val)[:, 1])
        log_metric("val_auc", auc, step=step)
        print(f"train: C={c:<5} validation auc {auc:.4f}")
        if best is None or auc > best[0]:
            best = (auc, c, model)
    val_auc, c, model = best

    holdout = common.read_events(os.path.join(args.data, "holdout.csv"))
    y_h = holdout[common.LABEL]
    p_h = model.predict_proba(common.features(holdout))[:, 1]
    metrics = {
        "auc": common.rounded(roc_auc_score(y_h, p_h)),
        "log_loss": common.rounded(log_loss(y_h, p_h)),
        "accuracy": common.rounded(accuracy_score(y_h, p_h >= 0.5)),
        "val_auc": common.rounded(val_auc),
        "c": c,
        "rows_fit": int(len(x_fit)),
        "rows_holdout": int(len(holdout)),
        "click_rate": common.rounded(y.mean()),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.pkl"), "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    save_metrics(metrics, os.path.join(args.out, "metrics.json"))
    log_environment()
    print(f"train: chose C={c}; holdout auc {metrics['auc']:.4f}, log loss "
          f"{metrics['log_loss']:.4f}, accuracy {metrics['accuracy']:.4f} on "
          f"{metrics['rows_holdout']} rows ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
