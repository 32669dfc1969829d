#!/usr/bin/env python3
"""Cold-start cost that load on the machine cannot skew: instructions (callgrind) and minor page
faults from exec to the first `/next` (init) and to the first `/response` (total), per role.

Each run starts one process against a one-event Runtime API stand-in on 127.0.0.1 (plus a UDP
socket for the X-Ray daemon, an OTLP/HTTP receiver and the public-IP service), with the variables
the cold_start bench gives each role (benches/cold_start/roles.rs). When the process reaches the
stop point the stand-in sends it SIGHUP, which neither the function nor lambda_runtime handles:
the process dies there, callgrind writes its counts, `wait4` returns its page faults.

    scripts/instructions.py [--bootstrap target/release/bootstrap] [--bench EXE] [--runs N]
                            [--bootstrap-segments target/release/bench-executables/bootstrap-segments]
                            [--no-callgrind] [role ...]

Roles: bare-work bare-hello bare-work-in-bench lr-logs lr-otel segments otlp-udp otlp-http
otlp-http-signed console none (default: bare-work segments otlp-udp otlp-http none). `bare-work`,
`bare-hello` and the two `lambda_runtime` stacks `lr-logs` and `lr-otel` are their own release
binaries beside `--bootstrap` (target/release/bare-work and so on), as the bench runs them;
`bare-work-in-bench` is the control role played by the cold_start bench executable (`--bench`;
default: the newest target/release/deps/cold_start-*). Standard library only. Page faults are
the median of N native runs (default 5).
"""

import argparse
import glob
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENT = open(os.path.join(ROOT, "events/success.json"), "rb").read()
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:hello-bench"
EXPORTERS = {
    "segments": {"OTEL_TRACES_EXPORTER": "xray"},
    "otlp-udp": {"OTEL_TRACES_EXPORTER": "otlp"},
    "otlp-http": {"OTEL_TRACES_EXPORTER": "otlp"},
    "otlp-http-signed": {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTLP_TRACES_SIGV4": "true",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "bench-session-token",
    },
    "console": {"OTEL_TRACES_EXPORTER": "console"},
    "none": {"OTEL_TRACES_EXPORTER": "none"},
}


def read_request(reader):
    line = reader.readline()
    if not line:
        return None
    method, path = line.decode().split()[:2]
    headers = {}
    while True:
        header = reader.readline().decode().strip()
        if not header:
            break
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        reader.read(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int(reader.readline().strip(), 16)
            reader.read(size + 2)
            if size == 0:
                break
    return method, path


def respond(conn, status, body, headers=()):
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    conn.sendall(head.encode() + b"\r\n" + body)


def http_service(body, content_type):
    """A plain HTTP service answering every request alike (public IP, OTLP receiver)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def conn_loop(conn):
        reader = conn.makefile("rb")
        try:
            while read_request(reader):
                respond(conn, 200, body, [("content-type", content_type)])
        except OSError:
            pass

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=conn_loop, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return "http://127.0.0.1:%d" % listener.getsockname()[1]


class RuntimeApi:
    """Serves one event; SIGHUPs the process at `stop` ("next" or "response")."""

    def __init__(self, stop):
        self.stop = stop
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.pid = None
        self.started = threading.Event()
        self.reached = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def hit(self):
        # A fast process can get here before Popen has returned its pid.
        self.started.wait()
        os.kill(self.pid, signal.SIGHUP)
        self.reached.set()

    def serve(self, conn):
        reader = conn.makefile("rb")
        try:
            while True:
                request = read_request(reader)
                if request is None:
                    return
                method, path = request
                if method == "GET" and path.endswith("/invocation/next"):
                    if self.stop == "next" or self.reached.is_set():
                        self.hit()
                        return
                    deadline = int(time.time() * 1000) + 30000
                    root = "Root=1-%08x-%024x;Parent=53995c3f42cd8ad8;Sampled=1" % (int(time.time()), 1)
                    respond(conn, 200, EVENT, [
                        ("lambda-runtime-aws-request-id", "instructions-1"),
                        ("lambda-runtime-deadline-ms", str(deadline)),
                        ("lambda-runtime-invoked-function-arn", ARN),
                        ("lambda-runtime-trace-id", root),
                        ("content-type", "application/json"),
                    ])
                elif method == "POST" and path.endswith("/response"):
                    self.hit()
                    return
                elif method == "POST":
                    print(f"  the process posted {path}", file=sys.stderr)
                    respond(conn, 202, b'{"status":"OK"}')
                    self.hit()
                    return
        except OSError:
            pass


def environment(role, api, sinks):
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": "hello-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/hello-bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]bench",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_REGION": "eu-west-1",
        "AWS_XRAY_DAEMON_ADDRESS": sinks["daemon"],
        "CHECKIP_URL": sinks["checkip"] + "/",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "PACKAGE_MANAGEMENT_SYSTEM": "cargo",
    }
    if role == "bare-work-in-bench":
        env["HELLO_LAMBDA_BENCH_ROLE"] = role
    elif role == "lr-otel":
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sinks["otlp"] + "/v1/traces"
    elif role in EXPORTERS:
        env.update(EXPORTERS[role])
        if role.startswith("otlp-http"):
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sinks["otlp"] + "/v1/traces"
    return env


def run(argv, env, stop):
    """Runs once to `stop`; returns the rusage of the process."""
    api = RuntimeApi(stop)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address)
    child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api.pid = child.pid
    api.started.set()
    if not api.reached.wait(120):
        child.kill()
        child.wait()
        raise SystemExit(f"{argv[-1]}: stop point {stop} not reached")
    _, _, rusage = os.wait4(child.pid, 0)
    child.returncode = 0
    api.listener.close()
    return rusage


def instructions(argv, env, stop, keep=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(keep or tmp, "callgrind.out.%s.%s" % (env.get("OTEL_TRACES_EXPORTER", env.get("HELLO_LAMBDA_BENCH_ROLE", os.path.basename(argv[0]))), stop))
        run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv, env, stop)
        text = open(out).read()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roles", nargs="*",
                        default=["bare-work", "segments", "otlp-udp", "otlp-http", "none"])
    parser.add_argument("--bootstrap", default=os.path.join(ROOT, "target/release/bootstrap"))
    # Segment documents are opt-in (`--features xray-segments`); the cold_start bench keeps that
    # build here.
    parser.add_argument("--bootstrap-segments",
                        default=os.path.join(ROOT, "target/release/bench-executables/bootstrap-segments"))
    parser.add_argument("--bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--keep", help="keep the callgrind.out files in this directory (for callgrind_annotate)")
    args = parser.parse_args()
    bench = args.bench or max(
        (p for p in glob.glob(os.path.join(ROOT, "target/release/deps/cold_start-*"))
         if os.access(p, os.X_OK) and not p.endswith(".d")),
        key=os.path.getmtime, default=None)
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    threading.Thread(target=lambda: [daemon.recv(65536) for _ in iter(int, 1)], daemon=True).start()
    sinks = {
        "daemon": "127.0.0.1:%d" % daemon.getsockname()[1],
        "checkip": http_service(b"198.51.100.7\n", "text/plain"),
        "otlp": http_service(b"", "application/x-protobuf"),
    }
    print(f"bootstrap: {args.bootstrap} ({os.path.getsize(args.bootstrap)} bytes)")
    if bench:
        print(f"bench:     {bench} ({os.path.getsize(bench)} bytes)")
    print(f"{'role':<17} {'Ir init':>12} {'Ir total':>12} {'faults init':>12} {'faults total':>12}")
    results = {}
    for role in args.roles:
        if role == "bare-work-in-bench":
            exe = bench
        elif role not in EXPORTERS:
            exe = os.path.join(os.path.dirname(args.bootstrap), role)
        elif role == "segments":
            exe = args.bootstrap_segments
        else:
            exe = args.bootstrap
        env = environment(role, "", sinks)
        row = {}
        for stop in ("next", "response"):
            row["faults_" + stop] = statistics.median(
                run([exe], env, stop).ru_minflt for _ in range(args.runs))
            if not args.no_callgrind:
                row["ir_" + stop] = instructions([exe], env, stop, args.keep)
        results[role] = row
        print(f"{role:<17} {row.get('ir_next', 0):>12,} {row.get('ir_response', 0):>12,} "
              f"{row['faults_next']:>12} {row['faults_response']:>12}", flush=True)
    base = results.get("bare-work")
    if base and not args.no_callgrind:
        for role, row in results.items():
            print(f"  {role:<15} init {row['ir_next'] / base['ir_next']:.3f}x  "
                  f"total {row['ir_response'] / base['ir_response']:.3f}x  (instructions over bare-work)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
