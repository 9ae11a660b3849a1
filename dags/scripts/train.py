#!/usr/bin/python3
"""Train the click model of the weekly_retrain demo DAG.

Reads DATA/train.csv (from make_data.py), fits a scikit-learn pipeline (one-hot device and
hour, log price, scaled counts, logistic regression), and writes into --out:

  model.pkl     the fitted pipeline (pickle)
  metrics.json  training metrics: auc and log loss on a validation split of train.csv,
                row counts, the features, the library versions
"""

import argparse
import os
import pickle
import platform
import sys
import time

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder written by make_data.py")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--c", type=float, default=1.0,
                   help="inverse regularisation strength of the regression (default 1.0)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model-name", default="click_model")
    return p.parse_args(argv)


def build_model(args):
    encode = ColumnTransformer([
        ("device", OneHotEncoder(handle_unknown="ignore"), ["device"]),
        ("hour", OneHotEncoder(handle_unknown="ignore"), ["hour"]),
        ("log_price", Pipeline([("log", FunctionTransformer(np.log1p)),
                                ("scale", StandardScaler())]), ["price"]),
        ("counts", StandardScaler(),
         ["sessions_7d", "minutes_watched", "item_popularity", "days_since_last"]),
    ])
    regression = LogisticRegression(C=args.c, max_iter=1000, random_state=args.seed)
    return Pipeline([("encode", encode), ("regression", regression)])


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    df = common.read_events(os.path.join(args.data, "train.csv"))
    x, y = common.features(df), df[common.LABEL]
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, random_state=args.seed,
                                                  stratify=y)

    model = build_model(args)
    model.fit(x_fit, y_fit)
    p_val = model.predict_proba(x_val)[:, 1]
    metrics = {
        "model": args.model_name,
        "auc": common.rounded(roc_auc_score(y_val, p_val)),
        "log_loss": common.rounded(log_loss(y_val, p_val)),
        "rows_fit": int(len(x_fit)),
        "rows_validation": int(len(x_val)),
        "click_rate": common.rounded(y.mean()),
        "features": common.NUMERIC + common.CATEGORICAL,
        "params": {"c": args.c, "seed": args.seed},
        "versions": {"python": platform.python_version(), "sklearn": sklearn.__version__},
    }

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "model.pkl"), "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    common.write_json(os.path.join(args.out, "metrics.json"), metrics)
    print(f"train: validation auc {metrics['auc']:.4f}, log loss {metrics['log_loss']:.4f} "
          f"on {metrics['rows_validation']} rows; model written to {args.out}/model.pkl "
          f"({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
