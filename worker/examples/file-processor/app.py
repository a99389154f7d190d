#!/usr/bin/env python3
"""The seeds' file processor as a kiln app (WORKER_APP): Python's standard library only.

The original worker polled SQS itself, deleted and retried messages, and ran a thread pool. Under
kiln it is an HTTP app, as on Elastic Beanstalk's worker tier: kiln starts one process per slot
(MAX_WORKERS), gives each its own PORT, waits for GET /health, and POSTs every message body to
`/`. Answer 200 and kiln deletes the message; anything else, a crash or no answer within
PROCESSING_TIMEOUT, and the message comes back for another try (then the dead-letter queue).

It keeps the seeds' shape so the bench and the bake can measure it honestly:
  - start-up costs about IMPORT_SECONDS (default 1.0) of CPU, standing in for boto3, the OCR
    libraries and the OpenSearch client;
  - each message costs about WORK_MS (default 300) milliseconds of CPU, the OCR of one file.

`python3 app.py --once` is the same program as a command (WORKER_COMMAND): one message on stdin,
exit 0 for done. The bench runs both to show what the per-message start-up costs.

A message is JSON: {"bucket": "...", "key": "..."} names the file (the seeds' S3 event shape);
{"work_ms": 50} overrides the CPU time of that one message; {"fail": true} fails it (the demo's
own failing messages). The headers kiln sends are sqsd's: X-Aws-Sqsd-Msgid, X-Aws-Sqsd-Receive-Count,
X-Aws-Sqsd-Queue, X-Aws-Sqsd-First-Received-At, X-Aws-Sqsd-Sender-Id, X-Aws-Sqsd-Attr-<name>.
"""
import hashlib
import http.server
import json
import os
import signal
import sys
import threading
import time


def burn_cpu(seconds):
    """CPU work for `seconds` of this process's CPU time (not wall time: a busy machine slows it)."""
    end = time.process_time() + seconds
    digest = b"kiln"
    while time.process_time() < end:
        for _ in range(200):
            digest = hashlib.sha256(digest).digest()
    return digest.hex()


def env_number(name, default):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        sys.exit(f"{name} must be a number (got {raw!r})")
    if value < 0:
        sys.exit(f"{name} must not be negative (got {raw!r})")
    return value


# The slow imports of the real worker: paid once per process, never per message.
IMPORT_SECONDS = env_number("IMPORT_SECONDS", 1.0)
WORK_MS = env_number("WORK_MS", 300)
MODEL = burn_cpu(IMPORT_SECONDS)


class Handler(http.server.BaseHTTPRequestHandler):
    # One line per request on stderr, which kiln tags with the slot and the message id.
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.headers.get("X-Aws-Sqsd-Msgid", "-"), fmt % args))

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"ok": True})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.answer(*process_file(self.rfile.read(length)))


def process_file(raw):
    """One message: the seeds' S3 download, OCR and indexing, as CPU. Returns (status, answer)."""
    try:
        job = json.loads(raw or b"{}")
    except ValueError:
        # Retrying cannot fix a body that is not JSON: after maxReceiveCount it reaches the DLQ.
        return 400, {"error": "the body is not JSON"}
    if not isinstance(job, dict):
        job = {}
    if job.get("fail") is True:
        return 500, {"error": "the message asked to fail"}
    work_ms = job.get("work_ms", WORK_MS)
    if not isinstance(work_ms, (int, float)) or work_ms < 0:
        work_ms = WORK_MS
    return 200, {"key": job.get("key"), "digest": burn_cpu(work_ms / 1000)[:16]}


def main():
    if "--once" in sys.argv:
        # The same program as a WORKER_COMMAND: one message on stdin, paying the imports every time.
        status, answer = process_file(sys.stdin.buffer.read())
        print(json.dumps(answer))
        sys.exit(0 if status == 200 else 1)
    port = int(os.environ["PORT"])
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)

    def stop(signum, frame):
        # shutdown() waits for the request in progress, so it must run outside serve_forever's thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
