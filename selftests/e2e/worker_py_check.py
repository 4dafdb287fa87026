#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The client side of selftests/e2e/test_worker_py.sh (standard library only):
raw UDP requests to a worker of the worker library on loopback, and a UDP
socket standing in for its router.

  worker_py_check.py answers --to A --count N --expect tagged|reverse|sum
      N requests one after another, each answered once, status 0, with the
      expected reply (tagged: payload + one byte, the batch's size).
  worker_py_check.py batch --to A --count N
      N requests at once: every one answered, some in a batch larger than 1.
  worker_py_check.py error --to A
      A request whose batch raises: status 2 (kernel error); the next one ok.
  worker_py_check.py loads --at R --queue-depth Q [--seconds S]
      LOADs arrive at R with queue_depth Q (the handler's queue_extra).
  worker_py_check.py drain --to A --at R --pid P --count N
      N requests, SIGTERM to P while they are served: every one answered
      status 0, and the last LOAD at R says DRAINING.

Each exits 0 when every check held, 1 otherwise.
"""
import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpn_udp import T_REQUEST, T_REPLY, T_LOAD, pack, unpack, addr_port  # noqa: E402

F_DRAINING = 0x0004
errors = []


def fail(msg):
    if len(errors) < 20:
        print("FAIL " + msg)
    errors.append(msg)


def sock(bind=("127.0.0.1", 0)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(bind)
    return s


def request(s, to, rid, pl):
    s.sendto(pack(type=T_REQUEST, service_id=2, tenant_id=5, request_id=rid) + pl, to)


def collect(s, want, seconds):
    """request_id -> (header, payload) for REPLYs, until every id of want came."""
    got = {}
    until = time.monotonic() + seconds
    while len(got) < len(want) and time.monotonic() < until:
        r, _, _ = select.select([s], [], [], max(0, until - time.monotonic()))
        if not r:
            break
        data, _ = s.recvfrom(70000)
        h = unpack(data)
        if not h or h["type"] != T_REPLY:
            continue
        if h["request_id"] in got:
            fail("request %d answered twice" % h["request_id"])
        got[h["request_id"]] = (h, data[48:])
    for rid in want:
        if rid not in got:
            fail("request %d not answered" % rid)
    return got


def expect(kind, pl, out):
    if kind == "reverse":
        return out == pl[::-1]
    if kind == "sum":
        return out == struct.pack("=I", sum(pl))
    return out[:-1] == pl and 1 <= out[-1] <= 64


def answers(a):
    s, to = sock(), addr_port(a.to)
    for k in range(a.count):
        pl = os.urandom(1 + k % 200)
        request(s, to, 100 + k, pl)
        got = collect(s, [100 + k], 3)
        if 100 + k in got:
            h, out = got[100 + k]
            if h["status"] != 0 or not expect(a.expect, pl, out):
                fail("request %d: status %d, reply %r" % (100 + k, h["status"], out[:16]))
    print("answers: %d requests, %d failed checks" % (a.count, len(errors)))


def batch(a):
    s, to = sock(), addr_port(a.to)
    pls = {}
    for k in range(a.count):
        pls[1000 + k] = os.urandom(32)
        request(s, to, 1000 + k, pls[1000 + k])
    got = collect(s, list(pls), 10)
    sizes = [out[-1] for h, out in got.values() if h["status"] == 0]
    for rid, (h, out) in got.items():
        if h["status"] != 0 or out[:-1] != pls[rid]:
            fail("request %d: status %d" % (rid, h["status"]))
    print("batch: %d answered, batch sizes seen %s" % (len(got), sorted(set(sizes))))
    if not sizes or max(sizes) < 2:
        fail("no batch larger than 1 under %d concurrent requests" % a.count)


def error(a):
    s, to = sock(), addr_port(a.to)
    request(s, to, 7001, b"raise")
    got = collect(s, [7001], 3)
    if 7001 in got and got[7001][0]["status"] != 2:
        fail("a raising batch answered status %d, want 2" % got[7001][0]["status"])
    request(s, to, 7002, b"fine")
    got = collect(s, [7002], 3)
    if 7002 in got and got[7002][0]["status"] != 0:
        fail("after the exception: status %d" % got[7002][0]["status"])
    print("error: kernel error for the raising batch, then ok")


def loads(a):
    s = sock(addr_port(a.at))
    until = time.monotonic() + a.seconds
    n = 0
    while time.monotonic() < until:
        r, _, _ = select.select([s], [], [], max(0, until - time.monotonic()))
        if not r:
            break
        h = unpack(s.recvfrom(2048)[0])
        if not h or h["type"] != T_LOAD:
            continue
        n += 1
        if h["queue_depth"] != a.queue_depth:
            fail("LOAD queue_depth %d, want %d" % (h["queue_depth"], a.queue_depth))
    print("loads: %d LOADs, queue_depth %d" % (n, a.queue_depth))
    if n < 2:
        fail("only %d LOADs in %.1f s" % (n, a.seconds))


def drain(a):
    s, to = sock(), addr_port(a.to)
    r = sock(addr_port(a.at))
    ids = list(range(9000, 9000 + a.count))
    for rid in ids:
        request(s, to, rid, b"d%d" % rid)
    time.sleep(0.02)
    os.kill(a.pid, signal.SIGTERM)
    got = collect(s, ids, 10)
    bad = [rid for rid, (h, _) in got.items() if h["status"] != 0]
    if bad:
        fail("requests queued before SIGTERM not answered ok: %s" % bad[:5])
    last = None
    until = time.monotonic() + 5
    while time.monotonic() < until:
        rr, _, _ = select.select([r], [], [], 0.5)
        if not rr:
            if last is not None:
                break
            continue
        h = unpack(r.recvfrom(2048)[0])
        if h and h["type"] == T_LOAD:
            last = h
    print("drain: %d of %d answered; last LOAD flags %#x" % (len(got), len(ids),
                                                            last["flags"] if last else 0))
    if not last or not last["flags"] & F_DRAINING:
        fail("the last LOAD does not say DRAINING")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["answers", "batch", "error", "loads", "drain"])
    ap.add_argument("--to")
    ap.add_argument("--at")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--expect", default="tagged")
    ap.add_argument("--queue-depth", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args()
    globals()[a.cmd](a)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
