#!/usr/bin/python3
"""Generate a synthetic "events" dataset for the weekly_retrain demo DAG.

Each row is one (user, item) impression with a few behavioural features and a
`clicked` label drawn from a fixed logistic model, so a classifier can learn it.
The output folder holds three CSV files with the same columns:

  train.csv    rows used to fit the model
  holdout.csv  rows the train step scores for the gates (never fitted on)
  score.csv    fresh rows to write predictions for (the label column is dropped)

plus meta.json describing how the data was made. The same --seed and options give
byte-identical files, so Drover's content-addressed store deduplicates them.

--drift D (0 = none) shifts the feature distributions and weakens the signal, to
make a "current" dataset that differs from a reference one for drift demos.
"""

import argparse
import csv
import datetime as dt
import json
import os
import sys

import numpy as np

DEVICES = ["mobile", "desktop", "tv"]
COLUMNS = ["event_id", "event_time", "user_id", "item_id", "device", "hour",
           "sessions_7d", "minutes_watched", "item_popularity", "price",
           "days_since_last", "clicked"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20000, help="total rows (default 20000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--window-days", type=int, default=14,
                   help="days of events before --as-of (default 14)")
    p.add_argument("--as-of", default="2026-01-05T03:00:00Z",
                   help="end of the event window, ISO 8601 (default 2026-01-05T03:00:00Z)")
    p.add_argument("--drift", type=float, default=0.0,
                   help="distribution shift, 0 (none) to about 2 (strong)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of rows for holdout.csv")
    p.add_argument("--score", type=float, default=0.1, help="share of rows for score.csv")
    p.add_argument("--out", required=True, help="output folder (created)")
    args = p.parse_args(argv)
    if args.rows < 100:
        p.error("--rows must be at least 100")
    if args.window_days < 1:
        p.error("--window-days must be at least 1")
    if args.drift < 0:
        p.error("--drift must be 0 or more")
    if not (0 < args.holdout < 1 and 0 < args.score < 1 and args.holdout + args.score < 0.9):
        p.error("--holdout and --score must be shares that leave rows to train on")
    return args


def parse_time(text):
    """Accepts 2026-01-05, 2026-01-05T03:00:00Z and 2026-01-05T03:00:00+03:00."""
    t = text.strip().replace("Z", "+00:00")
    when = dt.datetime.fromisoformat(t)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def generate(args):
    rng = np.random.default_rng(args.seed)
    n = args.rows
    d = args.drift

    user_id = rng.integers(1, max(2, n // 8), size=n)
    item_id = rng.integers(1, max(2, n // 20), size=n)
    device = rng.choice(len(DEVICES), size=n, p=[0.6 - 0.15 * min(d, 2) / 2, 0.3, 0.1 + 0.15 * min(d, 2) / 2])
    hour = rng.integers(0, 24, size=n)
    sessions_7d = rng.poisson(4.0 + 1.5 * d, size=n)
    minutes_watched = np.round(rng.gamma(2.0, 20.0 * (1 + 0.3 * d), size=n), 2)
    item_popularity = np.round(rng.beta(2.0, 5.0 + d, size=n), 4)
    price = np.round(rng.lognormal(2.0 + 0.25 * d, 0.6, size=n), 2)
    days_since_last = rng.exponential(3.0 * (1 + 0.5 * d), size=n).astype(int)

    # The ground truth; drift weakens it (concept drift) as well as moving the inputs.
    evening = ((hour >= 18) & (hour <= 23)).astype(float)
    logit = (-1.2
             + 0.25 * (sessions_7d - 4.0)
             + 0.015 * (minutes_watched - 40.0)
             + 3.0 * (item_popularity - 0.28)
             - 0.35 * (np.log(price) - 2.0)
             - 0.12 * (days_since_last - 3.0)
             + 0.5 * evening
             + np.array([0.0, 0.3, -0.4])[device])
    logit = logit / (1.0 + 0.5 * d) + rng.normal(0.0, 0.3, size=n)
    clicked = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    end = parse_time(args.as_of)
    window_s = args.window_days * 86400
    offsets = np.sort(rng.integers(0, window_s, size=n))
    times = [(end - dt.timedelta(seconds=int(window_s - o))).strftime("%Y-%m-%dT%H:%M:%SZ")
             for o in offsets]

    rows = []
    for i in range(n):
        rows.append([f"e{args.seed}-{i:07d}", times[i], int(user_id[i]), int(item_id[i]),
                     DEVICES[device[i]], int(hour[i]), int(sessions_7d[i]),
                     f"{minutes_watched[i]:.2f}", f"{item_popularity[i]:.4f}", f"{price[i]:.2f}",
                     int(days_since_last[i]), int(clicked[i])])
    return rows


def write_csv(path, rows, with_label=True):
    cols = COLUMNS if with_label else COLUMNS[:-1]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(r if with_label else r[:-1])


def main(argv):
    args = parse_args(argv)
    rows = generate(args)
    # Split by a fixed permutation so the three files are disjoint and reproducible.
    order = np.random.default_rng(args.seed + 1).permutation(len(rows))
    n_hold = int(len(rows) * args.holdout)
    n_score = int(len(rows) * args.score)
    hold = sorted(order[:n_hold])
    score = sorted(order[n_hold:n_hold + n_score])
    train = sorted(order[n_hold + n_score:])

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "train.csv"), [rows[i] for i in train])
    write_csv(os.path.join(args.out, "holdout.csv"), [rows[i] for i in hold])
    write_csv(os.path.join(args.out, "score.csv"), [rows[i] for i in score], with_label=False)
    meta = {
        "rows": {"train": len(train), "holdout": len(hold), "score": len(score)},
        "seed": args.seed,
        "drift": args.drift,
        "window_days": args.window_days,
        "as_of": parse_time(args.as_of).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "click_rate": round(float(np.mean([rows[i][-1] for i in train])), 4),
        "columns": COLUMNS,
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"make_data: wrote {len(train)} train, {len(hold)} holdout, {len(score)} score rows "
          f"to {args.out}/ (seed {args.seed}, drift {args.drift}, "
          f"click rate {meta['click_rate']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
