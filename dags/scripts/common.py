"""Helpers shared by the weekly_retrain demo scripts (dags/scripts/*.py).

Reading the CSV files that make_data.py writes into the model's feature matrix, and
writing JSON files the same way everywhere (sorted keys, trailing newline).
"""

import json
import os

import numpy as np
import pandas as pd

NUMERIC = ["hour", "sessions_7d", "minutes_watched", "item_popularity", "price",
           "days_since_last"]
CATEGORICAL = ["device"]
LABEL = "clicked"
ID = "event_id"


def read_events(path, need_label=True):
    """Loads one CSV of events; exits with a clear message when a column is missing."""
    if not os.path.exists(path):
        raise SystemExit(f"error: {path}: no such file (did the upstream task write it?)")
    df = pd.read_csv(path)
    need = [ID] + NUMERIC + CATEGORICAL + ([LABEL] if need_label else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SystemExit(f"error: {path}: missing columns {', '.join(missing)}")
    if len(df) == 0:
        raise SystemExit(f"error: {path}: no rows")
    return df


def features(df):
    """The feature frame the model sees: numeric columns plus the categorical ones."""
    return df[NUMERIC + CATEGORICAL]


def write_json(path, value):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def rounded(x, digits=4):
    return float(np.round(float(x), digits))
