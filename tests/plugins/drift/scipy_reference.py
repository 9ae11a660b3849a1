#!/usr/bin/python3
"""The scipy side of drift_test: reads two tables the way drover's drift reader does and
prints scipy's statistics per column as JSON (one object keyed by column name).

Usage: scipy_reference.py REF CUR [COL=numeric|categorical ...]

Definitions mirrored from plugins/drift (docs/drift.md): missing = empty / NA / N/A / null /
NULL / NaN / nan / None (spaces ignored); a column is numeric when every non-missing value
on both sides is a decimal number; numeric bins = numpy 'sturges' edges over both samples
when the reference has more than 10 distinct values, else one bin per value.
"""
import csv
import json
import math
import re
import sys

import numpy as np
from scipy import stats
from scipy.spatial import distance

MISSING = {"NA", "N/A", "null", "NULL", "NaN", "nan", "None"}
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def read_table(path):
    cols, rows = [], []
    if path.endswith((".jsonl", ".ndjson", ".json")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                obj = json.loads(line)
                row = {}
                for k, v in obj.items():
                    if k not in cols:
                        cols.append(k)
                    if v is None:
                        row[k] = None
                    elif isinstance(v, str):
                        row[k] = v
                    else:
                        row[k] = json.dumps(v, separators=(",", ":"))
                rows.append(row)
        return cols, [[r.get(c) for c in cols] for r in rows]
    delim = "\t" if path.endswith((".tsv", ".tab")) else ","
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delim, strict=True)
        cols = next(reader)
        for rec in reader:
            if rec == []:
                continue
            rows.append(rec)
    return cols, rows


def is_missing(s):
    if s is None:
        return True
    t = s.strip(" ")
    return t == "" or t in MISSING


def column(cols, rows, name):
    i = cols.index(name)
    return [r[i] for r in rows if not is_missing(r[i])], len(rows)


def numeric(values):
    return all(NUMBER.match(v.strip(" ")) for v in values)


def to_float(values):
    return np.array([float(v.strip(" ").lstrip("+")) for v in values], dtype=np.float64)


def shares(counts):
    c = np.asarray(counts, dtype=np.float64)
    return c / c.sum()


def psi(a, b, eps=1e-4):
    a = np.where(a == 0, eps, a)
    b = np.where(b == 0, eps, b)
    return float(np.sum((b - a) * np.log(b / a)))


def chi2(ca, cb):
    keep = [i for i in range(len(ca)) if ca[i] + cb[i] > 0]
    table = np.array([[ca[i] for i in keep], [cb[i] for i in keep]])
    res = stats.chi2_contingency(table, correction=False)
    return {"statistic": float(res[0]), "p_value": float(res[1]), "dof": int(res[2])}


def main():
    ref_path, cur_path = sys.argv[1], sys.argv[2]
    forced = dict(a.split("=", 1) for a in sys.argv[3:])
    rcols, rrows = read_table(ref_path)
    ccols, crows = read_table(cur_path)
    out = {}
    for name in rcols:
        if name not in ccols:
            continue
        a, _ = column(rcols, rrows, name)
        b, _ = column(ccols, crows, name)
        kind = forced.get(name) or ("numeric" if numeric(a) and numeric(b) else "categorical")
        res = {"type": kind, "n_reference": len(a), "n_current": len(b)}
        if not a or not b:
            res["empty"] = True
            out[name] = res
            continue
        if kind == "numeric":
            x, y = to_float(a), to_float(b)
            ks = stats.ks_2samp(x, y, method="auto")
            res["ks"] = {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)}
            w = stats.wasserstein_distance(x, y)
            res["wasserstein"] = float(w)
            res["wasserstein_normed"] = float(w / max(np.std(x), 0.001))
            if len(np.unique(x)) > 10:
                edges = np.histogram_bin_edges(np.concatenate([x, y]), bins="sturges")
                ca = np.histogram(x, bins=edges)[0]
                cb = np.histogram(y, bins=edges)[0]
            else:
                vals = np.unique(np.concatenate([x, y]))
                ca = np.array([np.sum(x == v) for v in vals])
                cb = np.array([np.sum(y == v) for v in vals])
        else:
            cats = sorted(set(a) | set(b))
            ca = np.array([a.count(c) for c in cats])
            cb = np.array([b.count(c) for c in cats])
        sa, sb = shares(ca), shares(cb)
        res["js"] = float(distance.jensenshannon(sa, sb))
        res["psi"] = psi(sa, sb)
        res["chi2"] = chi2(list(ca), list(cb))
        res["bins_reference"] = [int(v) for v in ca]
        res["bins_current"] = [int(v) for v in cb]
        out[name] = res
    json.dump(out, sys.stdout, allow_nan=True)


if __name__ == "__main__":
    main()
