#!/usr/bin/python3
"""Runs created per second through the API (issue 8): N sequential POST .../trigger on one
kept-alive connection against a real `drover serve`, beside the floor of the same number
of GET /api/v1/health round trips on the same connection. The DAG folder is a git
repository (the run record names its commit), as in production.

  bench/runs_rate.py DROVER_BIN [N]   prints a JSON line with both rates and their ratio
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

drover = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
work = tempfile.mkdtemp(prefix="drover-rate-")
dags = os.path.join(work, "dags")
home = os.path.join(work, "home")
os.makedirs(dags)
with open(os.path.join(dags, "rate.yaml"), "w") as f:
    # max_active_runs 1 and a first run that sleeps: every run after it stays queued, so the
    # figure is run creation (params checked, record committed, git facts), not execution.
    f.write("dag: rate\nmax_active_runs: 1\nparams:\n  s: {type: int, default: 0}\n"
            "tasks:\n  t: {run: [sleep, \"{{ params.s }}\"]}\n")
git = ["git", "-C", dags, "-c", "user.email=b@example.com", "-c", "user.name=b"]
subprocess.run(git + ["init", "-q"], check=True)
subprocess.run(git + ["add", "-A"], check=True)
subprocess.run(git + ["commit", "-q", "-m", "bench"], check=True)

serve = subprocess.Popen([drover, "serve", "--home", home, "--dags", dags, "--listen",
                          "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    info = os.path.join(home, "server.json")
    for _ in range(300):
        if os.path.exists(info):
            break
        time.sleep(0.05)
    url = json.load(open(info))["url"]
    host, port = url.split("//")[1].split(":")
    token = open(os.path.join(home, "token")).read().strip()
    hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(host, int(port))

    def call(method, path, body=None):
        global conn
        for _ in range(2):
            try:
                conn.request(method, path, body=body, headers=hdr)
                r = conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port))
        raise RuntimeError("request failed")

    def rate(method, path, body, want):
        t0 = time.perf_counter()
        for _ in range(n):
            status, data = call(method, path, body)
            if status != want:
                raise RuntimeError("%s %s: %d %s" % (method, path, status, data[:200]))
        return n / (time.perf_counter() - t0)

    call("GET", "/api/v1/health")
    status, data = call("POST", "/api/v1/dags/rate/trigger", '{"params": {"s": 600}}')
    assert status == 201, data
    floor = rate("GET", "/api/v1/health", None, 200)
    runs = rate("POST", "/api/v1/dags/rate/trigger", "{}", 201)
    print(json.dumps({"n": n, "runs_per_s": round(runs, 1), "health_per_s": round(floor, 1),
                      "ratio_to_floor": round(runs / floor, 3)}))
finally:
    serve.terminate()
    serve.wait()
    shutil.rmtree(work, ignore_errors=True)
