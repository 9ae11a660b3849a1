#!/usr/bin/python3
"""A serving store's ingestion endpoint for upload_test (tests/integration/upload_test.cpp),
speaking the upload task's HTTP protocol (docs/models.md, "HTTP protocol"). Started by the
test; binds 127.0.0.1 on port 0 and prints the port on the first line of stdout, flushed.

  upload_receiver.py OUT_DIR [--token T] [--fail-first K] [--fail-status S]
                     [--retry-after SECONDS] [--drop-first K] [--reject-batch N]
                     [--reject-status S]

Every request is appended to OUT_DIR/requests.jsonl as one JSON line {"n", "t" (monotonic
seconds), "path", "headers" (names lower-cased), "body" (parsed), "status", "replayed",
"dropped"}. Batches are staged per (prefix, version); a request whose Idempotency-Key was
answered before gets that answer again and changes nothing ("replayed": true; the same key
with another body is a 422). The commit checks that every batch 1..n arrived, the row count
and the set's sha256, then makes the set current: OUT_DIR/store/PREFIX.json holds {"current",
"versions" (complete, oldest first), "sets": {VERSION: {KEY: VALUE}}}, sets beyond `keep`
removed; it answers {"previous", "removed"}. An abort drops the staged set.

  --token T          requests without "Authorization: Bearer T" get 401 (echoing what came)
  --fail-first K     the first K requests get --fail-status (default 503), nothing stored
  --retry-after S    ... with "Retry-After: S"
  --drop-first K     the next K batches are stored, then the connection is closed unanswered
  --reject-batch N   batch N gets --reject-status (default 400), every time
"""
import argparse
import hashlib
import http.server
import json
import os
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--token")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--retry-after")
    ap.add_argument("--drop-first", type=int, default=0)
    ap.add_argument("--reject-batch", type=int, default=0)
    ap.add_argument("--reject-status", type=int, default=400)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out_dir, "store"), exist_ok=True)

    lock = threading.Lock()
    state = {"n": 0, "dropped": 0}
    answered = {}  # Idempotency-Key -> (body sha256, status, reply)
    staged = {}  # (prefix, version) -> {batch number: (rows, body sha256)}

    def store_path(prefix):
        return os.path.join(args.out_dir, "store", prefix + ".json")

    def load_store(prefix):
        try:
            with open(store_path(prefix), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {"current": None, "versions": [], "sets": {}}

    def save_store(prefix, s):
        tmp = store_path(prefix) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(s, f)
        os.replace(tmp, store_path(prefix))

    def batch(body, raw):
        key = (body["prefix"], body["version"])
        staged.setdefault(key, {})[body["batch"]] = (body["rows"], hashlib.sha256(raw).hexdigest())
        return 200, {"ok": True, "rows": len(body["rows"])}

    def commit(body):
        key = (body["prefix"], body["version"])
        got = staged.get(key)
        if got is None:
            return 409, {"error": "no staged set " + body["version"]}
        n = body["batches"]
        if sorted(got) != list(range(1, n + 1)):
            return 422, {"error": "batches %s arrived, not 1..%d" % (sorted(got), n)}
        rows = {}
        for i in range(1, n + 1):
            for r in got[i][0]:
                if r["key"] in rows:
                    return 422, {"error": "key %r twice" % r["key"]}
                rows[r["key"]] = r["value"]
        if len(rows) != body["rows"]:
            return 422, {"error": "%d rows arrived, the commit says %d" % (len(rows), body["rows"])}
        digest = hashlib.sha256("".join(got[i][1] + "\n" for i in range(1, n + 1)).encode())
        if digest.hexdigest() != body["sha256"]:
            return 422, {"error": "sha256 mismatch"}
        del staged[key]
        s = load_store(body["prefix"])
        previous = s["current"]
        s["sets"][body["version"]] = rows
        s["versions"].append(body["version"])
        s["current"] = body["version"]
        removed = []
        while len(s["versions"]) > body["keep"]:
            old = s["versions"].pop(0)
            del s["sets"][old]
            removed.append(old)
        save_store(body["prefix"], s)
        return 200, {"previous": previous, "removed": removed}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                state["n"] += 1
                record = {"n": state["n"], "t": time.monotonic(), "path": self.path,
                          "headers": headers, "body": body, "replayed": False, "dropped": False}
                extra = {}
                idem = headers.get("idempotency-key")
                raw_sha = hashlib.sha256(raw).hexdigest()
                if args.token and headers.get("authorization") != "Bearer " + args.token:
                    status, reply = 401, "unauthorized: got '%s'\n" % headers.get("authorization")
                elif state["n"] <= args.fail_first:
                    status, reply = args.fail_status, "failing on purpose\n"
                    if args.retry_after:
                        extra["Retry-After"] = args.retry_after
                elif idem in answered:
                    was_sha, status, reply = answered[idem]
                    record["replayed"] = True
                    if was_sha != raw_sha:
                        status, reply = 422, {"error": "Idempotency-Key reused, another body"}
                elif isinstance(body, dict) and body.get("batch") == args.reject_batch:
                    status = args.reject_status
                    reply = "row 3: score must be a number\nsecond line of detail\n"
                elif isinstance(body, dict) and "batch" in body:
                    status, reply = batch(body, raw)
                    answered[idem] = (raw_sha, status, reply)
                    if state["dropped"] < args.drop_first:
                        state["dropped"] += 1
                        record["dropped"] = True
                elif isinstance(body, dict) and body.get("commit") is True:
                    status, reply = commit(body)
                    if status == 200:
                        answered[idem] = (raw_sha, status, reply)
                elif isinstance(body, dict) and body.get("abort") is True:
                    staged.pop((body.get("prefix"), body.get("version")), None)
                    status, reply = 200, {"ok": True}
                else:
                    status, reply = 400, "not an upload request\n"
                record["status"] = status
                with open(os.path.join(args.out_dir, "requests.jsonl"), "a",
                          encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            if record["dropped"]:
                self.close_connection = True
                return
            data = (json.dumps(reply) + "\n" if isinstance(reply, dict) else reply).encode()
            self.send_response(status)
            self.send_header("Content-Type",
                             "application/json" if isinstance(reply, dict) else "text/plain")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
