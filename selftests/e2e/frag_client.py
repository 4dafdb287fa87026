#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A client of large messages (docs/PROTOCOL.md, "Large messages") for
selftests/e2e/test_worker_frag.sh: raw UDP to a cpn-worker running the echo
kernel on loopback, no router (standard library only).

  frag_client.py roundtrip --to A [--size N] [--count K] [--shuffle] [--dup]
      K requests of N bytes as fragments (acks and the window honoured; with
      --shuffle out of order, --dup each 10th fragment twice): each reply
      reassembled equals the request, its last fragment FRAG alone with the
      load report, every ack from the node's id.
  frag_client.py lost --to A --metrics URL [--size N] [--timeout-ms T]
      A request with one fragment never sent gets no reply, the next one is
      answered, small requests too; after the timeout the node holds nothing
      and counts the timeout.
  frag_client.py flood --to A --metrics URL --count N --ports P [--size N]
                       --client-budget B --budget B
      N first fragments of N-byte messages, request ids all different, from P
      source ports: each one acked or refused BUSY OVERLOAD at once, the
      bytes held never above the budgets (and per port, what is acked fits
      the client's budget), small requests answered throughout; after the
      timeout, nothing held.
  frag_client.py toolarge --to A --max M --metrics URL
      A first fragment of M + 1 bytes: REPLY status 4 (too large) at once;
      nothing held.
  frag_client.py malformed --to A --metrics URL
      Fragments with offset + len > total, total 0, total above 64 MiB, a
      short fragment header, a first fragment at an offset: no answer, each
      counted malformed; the node still answers.
  frag_client.py stall --to A --metrics URL [--size N] [--timeout-ms T]
      A large reply never acked: at most the window arrives, then after the
      timeout a plain REPLY with status 2 ends it; small requests are
      answered meanwhile; the timeout is counted and nothing stays held.

Each prints what it saw and exits 0 when every check held, 1 otherwise.
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpn_udp import T_REQUEST, T_REPLY, T_BUSY, pack, unpack, addr_port  # noqa: E402

F_TAGGED, F_AUTH, F_FRAG, F_CONT, F_FRAG_OK = 0x0001, 0x0002, 0x0020, 0x0040, 0x0080
FRAG = struct.Struct("!II")
DATA = 1408
WINDOW, ACK_EVERY = 256 << 10, 64 << 10
ST_KERNEL_ERROR, ST_TOO_LARGE, BUSY_OVERLOAD = 2, 4, 5
SERVICE, TENANT = 3, 9

errors = []


def fail(msg):
    if len(errors) < 20:
        print("FAIL " + msg)
    errors.append(msg)


def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    return s


def req_hdr(flags, rid, node_id=0):
    return pack(type=T_REQUEST, flags=flags, service_id=SERVICE, tenant_id=TENANT,
                session_key=0, request_id=rid, node_id=node_id)


def parse(data):
    """(header, (total, offset) or None, payload) or None."""
    h = unpack(data)
    if not h:
        return None
    off = 48 + (8 if h["flags"] & F_AUTH else 0)
    fr = None
    if h["flags"] & F_FRAG:
        if len(data) < off + 8:
            return None
        fr = FRAG.unpack_from(data, off)
        off += 8
    return h, fr, data[off:]


def recv(s, until):
    """The next datagram before the deadline, parsed, or None."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            data, _ = s.recvfrom(70000)
        except socket.timeout:
            return None
        p = parse(data)
        if p:
            return p


def metrics(url):
    out = {}
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
    return out


def metric(m, name, **labels):
    """Sum of the series of name whose labels include these."""
    tot = 0.0
    for k, v in m.items():
        n, _, rest = k.partition("{")
        if n != name:
            continue
        if all('%s="%s"' % (a, b) in rest for a, b in labels.items()):
            tot += v
    return tot


def send_request(s, to, rid, payload, shuffle=False, dup=False, skip=None, deadline=5.0):
    """Send payload as a large request. Returns (node_id, acks) or None
    when the node did not ack the first fragment."""
    total = len(payload)
    chunks = [(o, payload[o:o + DATA]) for o in range(0, total, DATA)]
    s.sendto(req_hdr(F_FRAG, rid) + FRAG.pack(total, 0) + chunks[0][1], to)
    until = time.monotonic() + deadline
    node = None
    acked = 0
    acks = []
    while node is None:
        p = recv(s, until)
        if not p:
            fail("request %d: no ack of the first fragment" % rid)
            return None
        h, fr, data = p
        if h["request_id"] != rid:
            continue
        if h["type"] != T_REPLY or not fr or (h["flags"] & (F_FRAG | F_CONT)) != F_FRAG | F_CONT \
                or data:
            fail("request %d: answer to the first fragment is not an ack: type %d flags %#x "
                 "status %d" % (rid, h["type"], h["flags"], h["status"]))
            return None
        node = h["node_id"]
        acked = fr[1]
        acks.append(fr[1])
    rest = chunks[1:]
    if shuffle:
        # Out of order within groups of 32 fragments (inside the window).
        groups = [rest[i:i + 32] for i in range(0, len(rest), 32)]
        rest = []
        for g in groups:
            random.shuffle(g)
            rest += g
    sent = len(chunks[0][1])
    for i, (o, c) in enumerate(rest):
        while sent - acked + len(c) > WINDOW:
            p = recv(s, until)
            if not p:
                fail("request %d: no ack with %d of %d bytes sent (acked %d)"
                     % (rid, sent, total, acked))
                return None
            h, fr, data = p
            if h["request_id"] == rid and fr and not data and h["type"] == T_REPLY:
                acks.append(fr[1])
                acked = max(acked, fr[1])
        sent += len(c)
        if skip is not None and i == skip:
            continue
        d = req_hdr(F_FRAG | F_CONT | F_TAGGED, rid, node) + FRAG.pack(total, o) + c
        s.sendto(d, to)
        if dup and i % 10 == 0:
            s.sendto(d, to)
    return node, acks, acked


def recv_reply(s, to, rid, total, node, deadline=5.0, ack=True):
    """Reassemble the reply (acking it). Returns (bytes, last header, info)."""
    until = time.monotonic() + deadline
    buf = bytearray(total)
    got = set()
    held = 0
    next_ack = ACK_EVERY
    last = None
    n = 0
    while held < total:
        p = recv(s, until)
        if not p:
            return None, None, "timeout with %d of %d bytes" % (held, total)
        h, fr, data = p
        if h["request_id"] != rid or h["type"] != T_REPLY:
            continue
        if not fr:
            return None, h, "a plain REPLY, status %d" % h["status"]
        if not data:
            continue  # one of the node's acks of the request
        if fr[0] != total:
            fail("reply %d: fragment total %d, want %d" % (rid, fr[0], total))
        if h["node_id"] != node:
            fail("reply %d: fragment from node %d, want %d" % (rid, h["node_id"], node))
        n += 1
        if fr[1] not in got:
            got.add(fr[1])
            buf[fr[1]:fr[1] + len(data)] = data
            held += len(data)
        if not h["flags"] & F_CONT:
            last = h
        elif last is not None:
            fail("reply %d: a CONT fragment after the one without CONT" % rid)
        if ack and (held >= next_ack or held == total):
            next_ack = (held // ACK_EVERY + 1) * ACK_EVERY
            s.sendto(req_hdr(F_FRAG | F_CONT | F_TAGGED, rid, node) + FRAG.pack(total, held), to)
    return bytes(buf), last, "%d fragments" % n


def small(s, to, rid, deadline=3.0):
    """A small request echoed."""
    pl = os.urandom(100)
    s.sendto(req_hdr(0, rid) + pl, to)
    until = time.monotonic() + deadline
    while True:
        p = recv(s, until)
        if not p:
            return "no answer"
        h, fr, data = p
        if h["request_id"] != rid:
            continue
        if h["type"] != T_REPLY or h["status"] != 0 or data != pl:
            return "type %d status %d" % (h["type"], h["status"])
        return None


def roundtrip(a):
    to = addr_port(a.to)
    s = sock()
    for k in range(a.count):
        rid = 1000 + k
        payload = os.urandom(a.size)
        t0 = time.monotonic()
        r = send_request(s, to, rid, payload, shuffle=a.shuffle, dup=a.dup)
        if not r:
            continue
        node, acks, _ = r
        data, last, info = recv_reply(s, to, rid, a.size, node)
        dt = time.monotonic() - t0
        if data != payload:
            fail("request %d: reply not the request (%s)" % (rid, info))
            continue
        if not last or last["capacity"] < 1 or last["flags"] & F_CONT:
            fail("request %d: the last fragment lacks the load report" % rid)
        if a.size > ACK_EVERY and len(acks) < 2:
            fail("request %d: %d acks for %d bytes" % (rid, len(acks), a.size))
        print("request %d: %d bytes round trip in %.1f ms, %s, %d acks, node %d, "
              "worker_us %d" % (rid, a.size, dt * 1e3, info, len(acks), node, last["worker_us"]))


def lost(a):
    to = addr_port(a.to)
    s = sock()
    pl1, pl2 = os.urandom(a.size), os.urandom(a.size)
    r = send_request(s, to, 2001, pl1, skip=5)
    if not r:
        return
    data, _, info = recv_reply(s, to, 2001, a.size, r[0], deadline=0.3)
    if data is not None:
        fail("request 2001 with a fragment lost was answered")
    r = send_request(s, to, 2002, pl2)
    if r:
        data, _, info = recv_reply(s, to, 2002, a.size, r[0])
        if data != pl2:
            fail("request 2002 after the lost one: %s" % info)
    for k in range(20):
        e = small(s, to, 2100 + k)
        if e:
            fail("small request: %s" % e)
    m = metrics(a.metrics)
    held = metric(m, "cpn_worker_frag_held_bytes")
    print("held while the incomplete message waits: %d bytes" % held)
    if held < a.size:
        fail("the incomplete message is not held (%d bytes)" % held)
    time.sleep(a.timeout_ms / 1000 + 0.4)
    m = metrics(a.metrics)
    held = metric(m, "cpn_worker_frag_held_bytes")
    tmo = metric(m, "cpn_worker_frag_timeouts_total", direction="request")
    print("after the timeout: held %d bytes, request timeouts %d" % (held, tmo))
    if held != 0 or tmo < 1:
        fail("after the timeout: held %d, timeouts %d" % (held, tmo))


def flood(a):
    to = addr_port(a.to)
    socks = [sock() for _ in range(a.ports)]
    probe = sock()
    acked = [0] * a.ports
    busy = 0
    peak = 0
    rid = 50000
    sent = 0
    t_end = time.monotonic() + 30
    per_round = 200
    while sent < a.count and time.monotonic() < t_end:
        for _ in range(per_round):
            i = sent % a.ports
            socks[i].sendto(req_hdr(F_FRAG, rid) + FRAG.pack(a.size, 0) + b"x" * 100, to)
            rid += 1
            sent += 1
        # Every first fragment is answered at once: an ack or BUSY.
        want, n = per_round, 0
        until = time.monotonic() + 2
        while n < want and time.monotonic() < until:
            r, _, _ = select.select(socks, [], [], max(0, until - time.monotonic()))
            for s in r:
                i = socks.index(s)
                data, _ = s.recvfrom(70000)
                p = parse(data)
                if not p:
                    continue
                h, fr, _ = p
                n += 1
                if h["type"] == T_REPLY and fr and h["flags"] & F_CONT:
                    acked[i] += 1
                elif h["type"] == T_BUSY and h["status"] == BUSY_OVERLOAD:
                    busy += 1
                else:
                    fail("flood: answer type %d status %d" % (h["type"], h["status"]))
        e = small(probe, to, 900000 + sent)
        if e:
            fail("small request during the flood: %s" % e)
        m = metrics(a.metrics)
        held = metric(m, "cpn_worker_frag_held_bytes")
        peak = max(peak, held)
        if held > a.budget:
            fail("held %d bytes > budget %d" % (held, a.budget))
    per_msg = a.size + 100  # at least what each message is charged
    for i in range(a.ports):
        if acked[i] * a.size > a.client_budget:
            fail("port %d: %d messages acked, %d bytes > the client budget %d"
                 % (i, acked[i], acked[i] * per_msg, a.client_budget))
    m = metrics(a.metrics)
    over = metric(m, "cpn_worker_frag_refused_total")
    print("flood: %d first fragments from %d ports: %d acked (%s), %d BUSY; held peak %d "
          "bytes (budget %d, client budget %d); refused %d"
          % (sent, a.ports, sum(acked), ",".join(map(str, acked)), busy, peak, a.budget,
             a.client_budget, over))
    if sum(acked) + busy != sent:
        fail("flood: %d answers to %d first fragments" % (sum(acked) + busy, sent))
    if busy == 0:
        fail("flood: the budgets refused nothing")
    time.sleep(a.timeout_ms / 1000 + 0.4)
    held = metric(metrics(a.metrics), "cpn_worker_frag_held_bytes")
    print("after the timeout: held %d bytes" % held)
    if held != 0:
        fail("after the flood's timeout, %d bytes still held" % held)
    e = small(probe, to, 999999)
    if e:
        fail("small request after the flood: %s" % e)


def toolarge(a):
    to = addr_port(a.to)
    s = sock()
    s.sendto(req_hdr(F_FRAG, 3001) + FRAG.pack(a.max + 1, 0) + b"y" * DATA, to)
    p = recv(s, time.monotonic() + 2)
    if not p:
        fail("too large: no answer")
        return
    h, fr, data = p
    print("too large: type %d flags %#x status %d" % (h["type"], h["flags"], h["status"]))
    if h["type"] != T_REPLY or h["status"] != ST_TOO_LARGE or h["flags"] & F_FRAG:
        fail("too large: want a plain REPLY status 4")
    m = metrics(a.metrics)
    if metric(m, "cpn_worker_frag_held_bytes") != 0:
        fail("too large: something held")
    if metric(m, "cpn_worker_frag_refused_total", reason="too_large") < 1:
        fail("too large: not counted")
    # One at the limit is taken (acked).
    s.sendto(req_hdr(F_FRAG, 3002) + FRAG.pack(a.max, 0) + b"y" * DATA, to)
    p = recv(s, time.monotonic() + 2)
    if not p or p[0]["type"] != T_REPLY or not p[0]["flags"] & F_CONT:
        fail("a message of --max-message bytes is not acked")


def malformed(a):
    to = addr_port(a.to)
    s = sock()
    before = metric(metrics(a.metrics), "cpn_worker_frag_dropped_total", reason="malformed")
    cases = [
        req_hdr(F_FRAG, 4001) + FRAG.pack(1000, 0) + b"z" * 1001,           # offset+len > total
        req_hdr(F_FRAG, 4002) + FRAG.pack(0, 0) + b"z" * 10,                # total 0
        req_hdr(F_FRAG, 4003) + FRAG.pack((64 << 20) + 1, 0) + b"z" * 10,   # above the wire's max
        req_hdr(F_FRAG, 4004) + b"\x00\x00\x10",                            # short fragment header
        req_hdr(F_FRAG, 4005) + FRAG.pack(5000, 1408) + b"z" * 100,         # first at an offset
        req_hdr(F_FRAG | F_CONT | F_TAGGED, 4006) + FRAG.pack(100, 90) + b"z" * 20,  # CONT past total
    ]
    for c in cases:
        s.sendto(c, to)
    p = recv(s, time.monotonic() + 0.5)
    if p:
        fail("malformed: answered (type %d request %d)" % (p[0]["type"], p[0]["request_id"]))
    after = metric(metrics(a.metrics), "cpn_worker_frag_dropped_total", reason="malformed")
    print("malformed: %d sent, counted %d" % (len(cases), after - before))
    if after - before != len(cases):
        fail("malformed: %d counted, want %d" % (after - before, len(cases)))
    e = small(s, to, 4100)
    if e:
        fail("small request after malformed fragments: %s" % e)


def stall(a):
    to = addr_port(a.to)
    s = sock()
    probe = sock()
    pl = os.urandom(a.size)
    r = send_request(s, to, 5001, pl)
    if not r:
        return
    node = r[0]
    # Take the reply's fragments without acking them.
    got = 0
    t0 = time.monotonic()
    until = t0 + a.timeout_ms / 1000 + 2
    end = None
    while True:
        p = recv(s, until)
        if not p:
            break
        h, fr, data = p
        if h["request_id"] != 5001 or h["type"] != T_REPLY:
            continue
        if fr and data:
            got += len(data)
            if got == len(data):
                # While this reply waits for acks, the node answers others.
                for k in range(10):
                    e = small(probe, to, 5100 + k, deadline=0.5)
                    if e:
                        fail("small request while a reply stalls: %s" % e)
        elif not fr:
            end = h
            break
    dt = time.monotonic() - t0
    print("stall: %d bytes came unacked (window %d); then %s after %.0f ms"
          % (got, WINDOW, "REPLY status %d" % end["status"] if end else "nothing", dt * 1e3))
    if got > WINDOW:
        fail("stall: %d bytes sent without an ack, window %d" % (got, WINDOW))
    if not end or end["status"] != ST_KERNEL_ERROR:
        fail("stall: no REPLY with status 2 after the timeout")
    elif dt < a.timeout_ms / 1000 * 0.9:
        fail("stall: failed after %.0f ms, before the timeout" % (dt * 1e3))
    if node != (end or {}).get("node_id", node):
        fail("stall: the end from another node")
    time.sleep(0.2)
    m = metrics(a.metrics)
    if metric(m, "cpn_worker_frag_timeouts_total", direction="reply") < 1:
        fail("stall: the reply's timeout not counted")
    if metric(m, "cpn_worker_frag_held_bytes") != 0:
        fail("stall: bytes still held")


def fragok(a):
    """A single-datagram request whose reply is larger than a fragment: as
    fragments when the request carries FRAG_OK, as one datagram when not."""
    s = sock()
    to = addr_port(a.to)
    pl = os.urandom(a.size)
    s.sendto(req_hdr(F_FRAG_OK, 501) + pl, to)
    got, last, info = recv_reply(s, to, 501, a.size, a.node)
    if got != pl:
        return fail("FRAG_OK: want the payload back as fragments: %s" % info)
    s.sendto(req_hdr(0, 502) + pl, to)
    until = time.monotonic() + 5.0
    while True:
        p = recv(s, until)
        if not p:
            return fail("without FRAG_OK: no answer")
        h, fr, data = p
        if h["request_id"] != 502:
            continue
        if fr or data != pl:
            return fail("without FRAG_OK: want one datagram of %d bytes, got %s" %
                        (a.size, "fragments" if fr else "%d bytes" % len(data)))
        print("FRAG_OK: %s; without: one datagram of %d bytes" % (info, len(data)))
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["roundtrip", "lost", "flood", "toolarge", "malformed", "stall", "fragok"])
    ap.add_argument("--to", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--dup", action="store_true")
    ap.add_argument("--ports", type=int, default=1)
    ap.add_argument("--client-budget", type=int, default=8 << 20)
    ap.add_argument("--budget", type=int, default=64 << 20)
    ap.add_argument("--max", type=int, default=4 << 20)
    ap.add_argument("--timeout-ms", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--node", type=int, default=0)
    a = ap.parse_args()
    random.seed(a.seed)
    globals()[a.cmd](a)
    if errors:
        print("%d check(s) failed" % len(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
