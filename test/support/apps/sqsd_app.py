#!/usr/bin/env python3
"""A WORKER_APP for tests, on Python's standard library: records every request it gets as one JSON
line in RECORD_FILE, and misbehaves when a message's body asks it to.

  ok (anything else)  200
  fail                500
  slow:<ms>           sleeps, then 200
  hang                never answers
  crash               the process exits at once (exit 3), mid-request
  leak:<MiB>          keeps that much memory for good, then 200
  env                 records the variables named in RECORD_ENV (comma-separated), then 200

READY_AFTER=<s>: GET /health answers 503 until then (200 after). NEVER_LISTEN=1: never opens its port.
"""
import http.server
import json
import os
import sys
import time

RECORD = os.environ["RECORD_FILE"]
STARTED = time.time()
READY_AFTER = float(os.environ.get("READY_AFTER", "0"))
kept = []


def record(entry):
    entry.update(pid=os.getpid(), slot=os.environ.get("KILN_APP_SLOT"), at=time.time())
    with open(RECORD, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def answer(self, status, text=b"ok"):
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self):
        ready = time.time() - STARTED >= READY_AFTER
        record({"event": "health", "path": self.path, "ready": ready})
        self.answer(200 if ready else 503)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        ready = time.time() - STARTED >= READY_AFTER
        record({"event": "start", "body": body, "path": self.path, "headers": dict(self.headers.items()), "ready": ready})
        status = 200
        if body == "fail":
            status = 500
        elif body.startswith("slow:"):
            time.sleep(int(body[5:]) / 1000)
        elif body == "hang":
            time.sleep(3600)
        elif body == "crash":
            sys.stderr.write("crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        elif body.startswith("leak:"):
            kept.append(bytearray(int(body.split(":")[1]) * 1024 * 1024))
        elif body == "env":
            names = os.environ.get("RECORD_ENV", "").split(",")
            record({"event": "env", "env": {n: os.environ.get(n) for n in names}})
        record({"event": "done", "body": body, "status": status})
        self.answer(status, b"failed on purpose" if status == 500 else b"ok")


if os.environ.get("NEVER_LISTEN") == "1":
    sys.stderr.write("not listening, on purpose\n")
    sys.stderr.flush()
    time.sleep(3600)

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
