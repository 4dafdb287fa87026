#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A local HTTP inference server for the HTTP bridge test (cpn-worker --kernel http),
standard library only (http.server.ThreadingHTTPServer, HTTP/1.1 keep-alive).

  upstream_http.py serve --listen IP:PORT
      POST /v2/models/<m>/infer   KServe v2: {"inputs": [{"name", "shape", "datatype",
                                  "data"}, ...]} -> {"model_name": m, "id": <the
                                  request's id>, "outputs": [{"name": "sum", "shape": [1],
                                  "datatype": "FP64", "data": [the sum of every input's
                                  data]}, {"name": "echo", ...: the first input's data}]}
      POST /v1/completions        OpenAI: {"model", "prompt"} -> {"object":
                                  "text_completion", "model", "choices": [{"index": 0,
                                  "text": the prompt upper-cased and reversed,
                                  "finish_reason": "stop"}], "usage": {...}}
      POST /v1/chat/completions   the same on the last message's content, as
                                  {"choices": [{"message": {"role": "assistant",
                                  "content": ...}}]}
      GET  /metrics               Prometheus text: vllm:num_requests_waiting{model_name="m"}
                                  (the value set by the control endpoint) and
                                  vllm:num_requests_running{model_name="m"} (requests
                                  inside now)
      GET  /control               the state as JSON: waiting, delay_ms, fail, inside,
                                  peak (most requests inside at once), served, failed
      POST /control               a JSON object that sets any of waiting, delay_ms,
                                  fail (true: every inference request answers HTTP 500),
                                  and peak (to reset it); answers the state
    A body that is not the JSON expected gets HTTP 400. Every inference request
    waits delay_ms before its answer.

  upstream_http.py ctl --to IP:PORT [KEY=VALUE ...]
      POST the settings (values are JSON: waiting=37 fail=true) to /control, or GET
      it without any; prints the state. Exit 0, or 1 when the upstream cannot be
      reached within --seconds (default 5; it is retried until then).
"""
import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"waiting": 0, "delay_ms": 0, "fail": False, "inside": 0, "peak": 0, "served": 0,
         "failed": 0}
LOCK = threading.Lock()


def kserve(model, body):
    req = json.loads(body)
    inputs = req["inputs"]
    total = 0.0
    for t in inputs:
        total += sum(float(x) for x in t["data"])
    first = inputs[0]["data"] if inputs else []
    out = {"model_name": model, "outputs": [
        {"name": "sum", "shape": [1], "datatype": "FP64", "data": [total]},
        {"name": "echo", "shape": [len(first)], "datatype": "FP64",
         "data": [float(x) for x in first]}]}
    if "id" in req:
        out["id"] = req["id"]
    return out


def transform(text):
    return text.upper()[::-1]


def completions(body):
    req = json.loads(body)
    prompt = req["prompt"]
    if not isinstance(prompt, str):
        raise ValueError("prompt must be a string")
    return {"id": "cmpl-1", "object": "text_completion", "created": int(time.time()),
            "model": req.get("model", ""), "choices": [
                {"index": 0, "text": transform(prompt), "logprobs": None,
                 "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()),
                      "completion_tokens": len(prompt.split()),
                      "total_tokens": 2 * len(prompt.split())}}


def chat(body):
    req = json.loads(body)
    content = req["messages"][-1]["content"]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model", ""), "choices": [
                {"index": 0, "message": {"role": "assistant", "content": transform(content)},
                 "finish_reason": "stop"}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the bridge reuses its connections

    def log_message(self, fmt, *args):
        pass

    def send(self, code, obj, ctype="application/json"):
        data = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/metrics":
            with LOCK:
                text = ("# HELP vllm:num_requests_waiting Number of requests waiting.\n"
                        "# TYPE vllm:num_requests_waiting gauge\n"
                        'vllm:num_requests_waiting{model_name="m"} %d\n'
                        "# HELP vllm:num_requests_running Number of requests running.\n"
                        "# TYPE vllm:num_requests_running gauge\n"
                        'vllm:num_requests_running{model_name="m"} %d\n'
                        % (STATE["waiting"], STATE["inside"]))
            self.send(200, text.encode(), "text/plain; version=0.0.4")
        elif self.path == "/control":
            with LOCK:
                self.send(200, dict(STATE))
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):
        body = self.body()
        if self.path == "/control":
            try:
                req = json.loads(body)
                with LOCK:
                    for k in ("waiting", "delay_ms", "peak"):
                        if k in req:
                            STATE[k] = int(req[k])
                    if "fail" in req:
                        STATE["fail"] = bool(req["fail"])
                    state = dict(STATE)
            except (ValueError, TypeError, AttributeError) as e:
                self.send(400, {"error": str(e)})
                return
            self.send(200, state)
            return
        path = self.path
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            work = lambda b: kserve(path[len("/v2/models/"):-len("/infer")], b)  # noqa: E731
        elif path == "/v1/completions":
            work = completions
        elif path == "/v1/chat/completions":
            work = chat
        else:
            self.send(404, {"error": "not found"})
            return
        with LOCK:
            STATE["inside"] += 1
            STATE["peak"] = max(STATE["peak"], STATE["inside"])
            delay, fail = STATE["delay_ms"], STATE["fail"]
        try:
            if delay:
                time.sleep(delay / 1000.0)
            if fail:
                with LOCK:
                    STATE["failed"] += 1
                self.send(500, {"error": "the upstream was told to fail"})
                return
            try:
                out = work(body)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                self.send(400, {"error": "bad request: %s" % e})
                return
            with LOCK:
                STATE["served"] += 1
            self.send(200, out)
        finally:
            with LOCK:
                STATE["inside"] -= 1


def addr_port(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def cmd_serve(a):
    srv = ThreadingHTTPServer(addr_port(a.listen), Handler)
    srv.daemon_threads = True
    print("upstream_http: serving on %s" % a.listen, flush=True)
    srv.serve_forever()


def cmd_ctl(a):
    url = "http://%s/control" % a.to
    settings = {}
    for kv in a.set:
        k, sep, v = kv.partition("=")
        if not sep:
            print("ctl: KEY=VALUE, not %r" % kv, file=sys.stderr)
            return 2
        settings[k] = json.loads(v)
    deadline = time.monotonic() + a.seconds
    while True:
        try:
            data = json.dumps(settings).encode() if settings else None
            req = urllib.request.Request(url, data=data, headers={
                "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                print(r.read().decode().strip())
                return 0
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() >= deadline:
                print("ctl: %s: %s" % (url, e), file=sys.stderr)
                return 1
            time.sleep(0.1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("serve")
    c.add_argument("--listen", required=True)
    c = sub.add_parser("ctl")
    c.add_argument("--to", required=True)
    c.add_argument("--seconds", type=float, default=5.0)
    c.add_argument("set", nargs="*")
    a = p.parse_args()
    return {"serve": cmd_serve, "ctl": cmd_ctl}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
