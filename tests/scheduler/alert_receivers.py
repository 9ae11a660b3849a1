#!/usr/bin/python3
"""Test receivers for alerts_test (tests/scheduler/alerts_test.cpp), started by the test.

  alert_receivers.py webhook OUT_FILE [--fail-first N]
      HTTP server: each POST body is appended to OUT_FILE as one JSON line
      {"path", "content_type", "body"}; answers 500 to the first N requests, then 200.
  alert_receivers.py smtp OUT_DIR [--starttls CERT KEY]
      SMTP sink (aiosmtpd): each message is written to OUT_DIR/N.eml (complete, then renamed)
      with the envelope in OUT_DIR/N.json {"mail_from", "rcpt_tos", "tls"}. With
      --starttls it offers STARTTLS with CERT/KEY and refuses mail without it (530).

Both bind 127.0.0.1 on port 0 and print the port on the first line of stdout, flushed.
"""
import http.server
import json
import os
import sys
import threading


def run_webhook(out_file, fail_first):
    lock = threading.Lock()
    state = {"seen": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8", "replace")
            with lock:
                state["seen"] += 1
                failing = state["seen"] <= fail_first
                record = {"path": self.path, "content_type": self.headers.get("Content-Type"),
                          "body": body, "status": 500 if failing else 200}
                with open(out_file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "text/plain")
            reply = b"failing on purpose\n" if failing else b"ok\n"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def run_smtp(out_dir, cert=None, key=None):
    import asyncio
    import ssl
    from aiosmtpd.smtp import SMTP

    os.makedirs(out_dir, exist_ok=True)
    counter = {"n": 0}

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            counter["n"] += 1
            base = os.path.join(out_dir, str(counter["n"]))
            with open(base + ".json.tmp", "w", encoding="utf-8") as f:
                json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                           "tls": session.ssl is not None}, f)
            os.rename(base + ".json.tmp", base + ".json")
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(base + ".eml.tmp", base + ".eml")
            return "250 Message accepted for delivery"

    async def serve():
        loop = asyncio.get_running_loop()
        if cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            factory = lambda: SMTP(Sink(), tls_context=ctx, require_starttls=True)
        else:
            factory = lambda: SMTP(Sink())
        server = await loop.create_server(factory, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(serve())


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "webhook":
        fail_first = 0
        if len(sys.argv) == 5 and sys.argv[3] == "--fail-first":
            fail_first = int(sys.argv[4])
        run_webhook(sys.argv[2], fail_first)
    elif len(sys.argv) == 3 and sys.argv[1] == "smtp":
        run_smtp(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "smtp" and sys.argv[3] == "--starttls":
        run_smtp(sys.argv[2], sys.argv[4], sys.argv[5])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
