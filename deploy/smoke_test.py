#!/usr/bin/env python3
"""`make smoke-test`: run the bootstrap from the deployment zip the way Lambda would.

Usage: smoke_test.py ZIP SUCCESS_EVENT ERROR_EVENT

Extracts the zip into a temporary /var/task stand-in, serves a minimal Lambda Runtime API
(2018-06-01: next, response, error, init/error) and a checkip stand-in on 127.0.0.1, starts
`bootstrap` with the variables Lambda sets, feeds it the two events and checks that the first gets
a response and the second a function error. This checks the packaged artifact itself (it starts,
finds its runtime API, serves invocations); the full runtime behaviour is covered by `make test`
against cargo-lambda's emulator.
"""

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    def __init__(self, events):
        self.pending = queue.Queue()
        for event in events:
            self.pending.put(event)
        self.results = queue.Queue()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def handler_for(api):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, body=b"", headers=None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the bootstrap was stopped at the end of the test

        def do_GET(self):
            if self.path == "/checkip":
                return self.reply(200, b"203.0.113.7\n", {"Content-Type": "text/plain"})
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            try:
                event = api.pending.get(timeout=60)
            except queue.Empty:
                return self.reply(500)
            request_id = str(uuid.uuid4())
            api.results.put(("next", request_id, None))
            self.reply(
                200,
                event,
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                    "Lambda-Runtime-Invoked-Function-Arn": (
                        "arn:aws:lambda:us-east-1:123456789012:function:rust-hello-world"
                    ),
                    "Lambda-Runtime-Trace-Id": (
                        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                        f"Parent={uuid.uuid4().hex[:16]};Sampled=1"
                    ),
                },
            )

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            if parts == ["init", "error"]:
                api.results.put(("init-error", None, body))
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                api.results.put((parts[2], parts[1], body))
            else:
                return self.reply(404)
            self.reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

    return Handler


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    zip_path, success_event, error_event = sys.argv[1:]
    if not os.path.isfile(zip_path):
        print(f"smoke-test: no {zip_path}: run `make package` first", file=sys.stderr)
        return 1
    events = [open(path, "rb").read() for path in (success_event, error_event)]
    api = RuntimeApi(events)
    server = QuietServer(("127.0.0.1", 0), handler_for(api))
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as task_root:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task_root)
            names = archive.namelist()
        bootstrap = os.path.join(task_root, "bootstrap")
        os.chmod(bootstrap, 0o755)  # extractall drops the mode; Lambda keeps it
        print(f"smoke-test: {zip_path} holds {', '.join(names)}; runtime API on 127.0.0.1:{port}")
        env = {
            "PATH": "/usr/bin:/bin",
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": "rust-hello-world",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/rust-hello-world",
            "AWS_LAMBDA_LOG_STREAM_NAME": "smoke-test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PACKAGE_MANAGEMENT_SYSTEM": "cargo",
            "OTEL_TRACES_EXPORTER": "none",
            "AWS_LAMBDA_LOG_FORMAT": "Text",
            "CHECKIP_URL": f"http://127.0.0.1:{port}/checkip",
        }
        log_path = os.path.join(task_root, "function.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen([bootstrap], cwd=task_root, env=env, stdout=log, stderr=log)
            outcomes, failure = [], None
            try:
                deadline = time.time() + 30
                while len(outcomes) < 2 and time.time() < deadline:
                    try:
                        kind, request_id, body = api.results.get(timeout=0.5)
                    except queue.Empty:
                        if process.poll() is not None:
                            failure = f"bootstrap exited with status {process.returncode}"
                            break
                        continue
                    if kind == "init-error":
                        failure = f"init error: {body.decode(errors='replace')}"
                        break
                    if kind in ("response", "error"):
                        outcomes.append((kind, json.loads(body or b"null")))
                else:
                    if len(outcomes) < 2:
                        failure = "timed out waiting for the bootstrap"
            finally:
                process.kill()
                process.wait()
                server.shutdown()
        logs = open(log_path, encoding="utf-8", errors="replace").read()
    for (kind, body), event in zip(outcomes, (success_event, error_event)):
        print(f"smoke-test: {event} -> {kind}: {json.dumps(body)}")
    expected = ["response", "error"]
    if failure is None and [kind for kind, _ in outcomes] != expected:
        failure = f"expected {expected}, got {[kind for kind, _ in outcomes]}"
    if failure:
        print("--- bootstrap output ---\n" + logs, file=sys.stderr)
        print(f"smoke-test: FAIL: {failure}", file=sys.stderr)
        return 1
    print("smoke-test: OK: the packaged bootstrap serves a response and reports a function error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
