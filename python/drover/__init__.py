"""Drover's helper for training scripts (docs/models.md).

A `train` task puts this folder on PYTHONPATH, so a script run by Debian's
/usr/bin/python3 (or any Python 3) can do:

    from drover import log_metric, log_metrics, log_environment, save_metrics

    for step in range(epochs):
        log_metric("loss", loss, step=step)      # a step metric (a JSON line)
    save_metrics({"auc": auc})                 # the final metrics: with: {metrics: metrics.json}
    log_environment()                          # interpreter and imported packages' versions

It only writes the files drover reads; scripts in any language may write them directly:
  $DROVER_METRICS_FILE      JSON lines {"name": "loss", "value": 0.41, "step": 3}
  metrics.json (your with:) one JSON object of numbers, in the work dir
  $DROVER_ENVIRONMENT_FILE  one JSON object (what log_environment writes)
Outside drover (no DROVER_METRICS_FILE) log_metric and log_environment do nothing, so the
same script runs by hand.
"""

import json
import math
import os
import platform
import sys

__all__ = ["log_metric", "log_metrics", "log_environment", "save_metrics"]


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars and the like
        except (TypeError, ValueError):
            raise TypeError("metric %r must be a number, not %s" % (name, type(value).__name__))
    if not math.isfinite(value):
        raise ValueError("metric %r is not finite: %r" % (name, value))
    return value


def log_metric(name, value, step=None):
    """Appends one metric to $DROVER_METRICS_FILE; step None: a final value."""
    path = os.environ.get("DROVER_METRICS_FILE")
    if not path:
        return
    line = {"name": str(name), "value": _number(name, value)}
    if step is not None:
        line["step"] = int(step)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def log_metrics(metrics, step=None):
    """log_metric for each name: value of a dict."""
    for name, value in metrics.items():
        log_metric(name, value, step)


def save_metrics(metrics, path="metrics.json"):
    """Writes the final metrics (a dict of numbers) as the JSON object a train reads."""
    clean = {str(k): _number(k, v) for k, v in metrics.items()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(clean, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _package_versions():
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    stdlib = getattr(sys, "stdlib_module_names", frozenset())  # Python >= 3.10
    out = {}
    for name, module in sorted(sys.modules.items()):
        if "." in name or name.startswith("_") or module is None or name in stdlib:
            continue
        if name == "drover":
            continue
        version = getattr(module, "__version__", None)
        if version is None and metadata is not None:
            try:
                version = metadata.version(name)
            except Exception:
                version = None
        if isinstance(version, str):
            out[name] = version
    return out


def log_environment(extra=None):
    """Writes the interpreter and the versions of the imported packages to
    $DROVER_ENVIRONMENT_FILE; call it after your imports. `extra`: more keys."""
    path = os.environ.get("DROVER_ENVIRONMENT_FILE")
    if not path:
        return
    env = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": _package_versions(),
    }
    if extra:
        env.update(extra)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(env, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
