#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A client of cpn-worker for selftests/e2e/test_worker.sh (standard library only).

Talks to the worker directly (no router) over UDP; the header is cpn_udp.py's.

  worker_client.py ports N                       N free ports on 127.0.0.1, one per line
  worker_client.py wait --to A [--seconds S]     PROBE until a PROBE_ACK comes
  worker_client.py echo --to A --node-id N --capacity C [--count N]
      N REQUESTs with random identities and payloads: exactly one REPLY each,
      identity echoed, payload back, from A, status 0, a sane load report.
  worker_client.py burst --to A [--count N] [--min-worker-us US] [--min-elapsed-ms MS]
      N REQUESTs back to back; every one answered; with --min-worker-us,
      each REPLY's worker_us at least US (a lone request waits for its batch);
      with --min-elapsed-ms, the last REPLY no sooner than MS after the first send.
  worker_client.py probe --to A --node-id N --capacity C [--svc-min US] [--svc-max US]
      PROBE_ACK at once, router_ts echoed, load fields, mean service time in range.
  worker_client.py heartbeats --at A[,B..] --node-id N --capacity C --interval-ms I
                              [--seconds S]
      Stand in for routers: LOADs arrive at each at about the interval, with
      the node's load fields.
  worker_client.py loaded --to A --router-at R --count N --svc-us US --capacity C
      N requests to a worker of one slot, batches of one, US each: the LOADs
      at R show the queue draining, inflight 1, util near 255, worker_us US,
      and idle at the end.
  worker_client.py delay --to A --delay-us D [--count N]
      Round trips of REPLY and PROBE_ACK take at least D us; worker_us does not
      count them.
  worker_client.py overload --to A --count N --queue Q
      A burst beyond the queue: every request answered once, the excess with
      BUSY status 5 (OVERLOAD) at once.
  worker_client.py drain --to A --router-at R --pid P --count N --svc-us US
                         [--pre-ms MS] [--late M]
      N slow requests (a worker of one slot, batches of one, US each), SIGTERM
      to P after MS, then M more: the first N all get REPLY (those finished
      after the signal with DRAINING), the M new ones BUSY status 4 with
      DRAINING, and the router's last LOAD says DRAINING with an empty queue.
  worker_client.py scrape --url U --out FILE
  worker_client.py metric --file F --name NAME [--label K=V ...]   print a sample's value

Each prints what it saw and exits 0 when every check held, 1 when one failed.
"""
import argparse
import os
import random
import select
import signal
import socket
import statistics
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpn_udp import HDR, MAGIC, VERSION, T_REQUEST, T_REPLY, T_LOAD, T_PROBE, T_PROBE_ACK, \
    T_BUSY, pack, unpack, addr_port  # noqa: E402

F_AUTH, F_DRAINING, F_TOKEN = 0x0002, 0x0004, 0x0010
ST_BAD_REQUEST, BUSY_DRAINING, BUSY_OVERLOAD = 1, 4, 5
IDENTITY = ("service_id", "tenant_id", "session_key", "request_id", "hops", "class_", "router_ts")

errors = []


def fail(msg):
    if len(errors) < 20:
        print(f"FAIL {msg}")
    errors.append(msg)


def sock_for(addr):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    return s


def parse_addr(a):
    host, port = addr_port(a)
    return host.strip("[]"), port


def request(rid, payload=b"", **kw):
    h = dict(type=T_REQUEST, service_id=random.randrange(1, 1000),
             tenant_id=random.getrandbits(32), session_key=random.getrandbits(32),
             request_id=rid, node_id=0, hops=random.randrange(1, 4), class_=random.randrange(8),
             router_ts=random.getrandbits(32))
    h.update(kw)
    return h, pack(**h) + payload


def recv_until(s, deadline, want):
    """Datagrams (data, src, t) until deadline or until want() says enough."""
    out = []
    while time.monotonic() < deadline and not want(out):
        r, _, _ = select.select([s], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
        if not r:
            continue
        data, src = s.recvfrom(65535)
        out.append((data, src, time.monotonic()))
    return out


def payload_of(data, h):
    return data[HDR.size + (8 if h["flags"] & F_AUTH else 0):]


def check_load(who, h, capacity, node_id, draining=False):
    if h["magic"] != MAGIC or h["version"] != VERSION:
        fail(f"{who}: bad magic/version")
    if h["node_id"] != node_id:
        fail(f"{who}: node_id {h['node_id']}, want {node_id}")
    if h["capacity"] != capacity:
        fail(f"{who}: capacity {h['capacity']}, want {capacity}")
    if bool(h["flags"] & F_DRAINING) != draining:
        fail(f"{who}: DRAINING {'missing' if draining else 'set'}")
    if not h["flags"] & 0x0100 and h["stamp"] != 0:
        fail(f"{who}: stamp {h['stamp']} without FRESH")


def cmd_ports(a):
    socks = []
    found = 0
    # A UDP port whose TCP twin is taken (a connection of an earlier test
    # in TIME_WAIT) is skipped: draw again, a bounded number of times.
    for _ in range(50 * a.n):
        if found == a.n:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", s.getsockname()[1]))  # free for /metrics too
        except OSError:
            t.close()
            s.close()
            continue
        socks += [s, t]
        found += 1
        print(s.getsockname()[1])
    for s in socks:
        s.close()
    return 0


def cmd_wait(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        s.sendto(pack(type=T_PROBE, router_ts=1), to)
        got = recv_until(s, time.monotonic() + 0.1, lambda o: o)
        if any((unpack(d) or {}).get("type") == T_PROBE_ACK for d, _, _ in got):
            print("worker answers")
            return 0
    print(f"FAIL no PROBE_ACK from {a.to} in {a.seconds} s")
    return 1


def cmd_echo(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    base = random.getrandbits(40) << 20
    sent = {}
    for i in range(a.count):
        pl = os.urandom(random.randrange(0, 300))
        h, d = request(base + i, pl)
        sent[base + i] = (h, pl)
        s.sendto(d, to)
        if i % 16 == 15:
            time.sleep(0.002)
    got = recv_until(s, time.monotonic() + a.timeout, lambda o: len(o) >= a.count)
    seen = {}
    for data, src, _ in got:
        h = unpack(data)
        if h is None:
            fail("a datagram shorter than the header")
            continue
        rid = h["request_id"]
        if rid not in sent:
            fail(f"unknown request_id {rid}")
            continue
        seen[rid] = seen.get(rid, 0) + 1
        if seen[rid] > 1:
            fail(f"request {rid}: {seen[rid]} replies")
            continue
        q, pl = sent[rid]
        if (src[0], src[1]) != to:
            fail(f"request {rid}: reply from {src[0]}:{src[1]}, want {a.to}")
        if h["type"] != T_REPLY or h["status"] != 0:
            fail(f"request {rid}: type {h['type']} status {h['status']}")
        for f in IDENTITY:
            if h[f] != q[f]:
                fail(f"request {rid}: {f} {h[f]}, sent {q[f]}")
        check_load(f"request {rid}", h, a.capacity, a.node_id)
        if h["queue_depth"] > a.count or h["inflight"] > a.count:
            fail(f"request {rid}: queue {h['queue_depth']} inflight {h['inflight']}")
        if not 0 < h["worker_us"] < a.timeout * 1e6:
            fail(f"request {rid}: worker_us {h['worker_us']}")
        if payload_of(data, h) != pl:
            fail(f"request {rid}: payload changed")
    missing = len(set(sent) - set(seen))
    print(f"sent={a.count} replied={len(seen)} missing={missing}")
    if missing:
        fail(f"{missing} requests got no REPLY")
    return 1 if errors else 0


def cmd_burst(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    base = random.getrandbits(40) << 20
    msgs = [request(base + i, b"x" * 16)[1] for i in range(a.count)]
    t0 = time.monotonic()
    for d in msgs:
        s.sendto(d, to)
    got = recv_until(s, time.monotonic() + a.timeout, lambda o: len(o) >= a.count)
    us, last = [], t0
    for data, _, t in got:
        h = unpack(data)
        if h and h["type"] == T_REPLY and base <= h["request_id"] < base + a.count:
            us.append(h["worker_us"])
            last = max(last, t)
    elapsed = (last - t0) * 1000
    print(f"sent={a.count} replied={len(us)} worker_us={sorted(us)} elapsed_ms={elapsed:.1f}")
    if len(us) != a.count:
        fail(f"{a.count - len(us)} requests unanswered")
    if a.min_worker_us and any(u < a.min_worker_us for u in us):
        fail(f"worker_us below {a.min_worker_us}: the batch closed before its deadline")
    if elapsed < a.min_elapsed_ms:
        fail(f"all answered in {elapsed:.1f} ms, less than {a.min_elapsed_ms} ms")
    return 1 if errors else 0


def cmd_tokens(a):
    """A burst on one slot: the replies that leave at most --tokens-last - 1
    waiting carry an idle token, the others none (none at all with --queue -1,
    the worker's --tokens off)."""
    to = parse_addr(a.to)
    s = sock_for(to)
    base = random.getrandbits(40) << 20
    for i in range(a.count):
        s.sendto(request(base + i, b"t")[1], to)
    got = recv_until(s, time.monotonic() + a.timeout, lambda o: len(o) >= a.count)
    marks = []
    for data, _, _ in got:
        h = unpack(data)
        if h and h["type"] == T_REPLY and base <= h["request_id"] < base + a.count:
            marks.append(1 if h["flags"] & F_TOKEN else 0)
    print(f"sent={a.count} replied={len(marks)} tokens in arrival order={marks}")
    if len(marks) != a.count:
        fail(f"{a.count - len(marks)} requests unanswered")
    last = min(a.tokens_last, a.count)
    want = [0] * a.count if a.queue < 0 else [0] * (a.count - last) + [1] * last
    if marks != want:
        fail(f"tokens {marks}, want {want}")
    return 1 if errors else 0


def cmd_probe(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    for _ in range(3):
        ts = random.getrandbits(32)
        t0 = time.monotonic()
        s.sendto(pack(type=T_PROBE, router_ts=ts, request_id=77, service_id=5), to)
        got = recv_until(s, t0 + 1.0, lambda o: o)
        if not got:
            fail("no PROBE_ACK within 1 s")
            break
        data, src, t1 = got[0]
        h = unpack(data)
        if h["type"] != T_PROBE_ACK:
            fail(f"type {h['type']}, want PROBE_ACK")
        if h["router_ts"] != ts:
            fail(f"router_ts {h['router_ts']} not echoed ({ts})")
        if not max(1, a.svc_min) <= h["worker_us"] <= (a.svc_max or 1 << 32):
            fail(f"PROBE_ACK mean service time {h['worker_us']} us, want "
                 f"{max(1, a.svc_min)}..{a.svc_max or 'any'}")
        check_load("PROBE_ACK", h, a.capacity, a.node_id)
        print(f"PROBE_ACK router_ts={h['router_ts']} worker_us={h['worker_us']} "
              f"rtt_ms={(t1 - t0) * 1000:.2f}")
    return 1 if errors else 0


def cmd_heartbeats(a):
    socks = []
    for at in a.at.split(","):
        addr = parse_addr(at)
        s = sock_for(addr)
        s.bind(addr)
        socks.append((at, s))
    arrivals = {at: [] for at, _ in socks}
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        r, _, _ = select.select([s for _, s in socks], [], [], 0.05)
        for at, s in socks:
            if s in r:
                data, _ = s.recvfrom(65535)
                h = unpack(data)
                if h is None or h["type"] != T_LOAD:
                    fail(f"{at}: not a LOAD")
                    continue
                arrivals[at].append((time.monotonic(), h))
    want = a.seconds * 1000 / a.interval_ms
    for at, got in arrivals.items():
        gaps = [(t2 - t1) * 1000 for (t1, _), (t2, _) in zip(got, got[1:])]
        med = statistics.median(gaps) if gaps else 0
        print(f"{at}: loads={len(got)} (expected ~{want:.0f}) median_gap_ms={med:.1f}")
        if not 0.6 * want <= len(got) <= 1.4 * want + 2:
            fail(f"{at}: {len(got)} LOADs in {a.seconds} s, expected ~{want:.0f}")
        if gaps and not 0.7 * a.interval_ms <= med <= 1.5 * a.interval_ms:
            fail(f"{at}: median gap {med:.1f} ms, interval {a.interval_ms} ms")
        for _, h in got:
            check_load(f"{at} LOAD", h, a.capacity, a.node_id)
            if h["queue_depth"] or h["inflight"]:
                fail(f"{at}: idle worker reports queue {h['queue_depth']} "
                     f"inflight {h['inflight']}")
            if h["worker_us"] < 1:
                fail(f"{at}: LOAD without a mean service time")
            if h["flags"] & F_AUTH:
                fail(f"{at}: AUTH without --key")
    return 1 if errors else 0


def cmd_loaded(a):
    """Keep a one-slot synthetic worker busy; its LOADs must show it."""
    to = parse_addr(a.to)
    s = sock_for(to)
    r_addr = parse_addr(a.router_at)
    r = sock_for(r_addr)
    r.bind(r_addr)
    base = random.getrandbits(40) << 20
    for i in range(a.count):
        s.sendto(request(base + i, b"w")[1], to)
    busy_for = a.count * a.svc_us / 1e6
    loads = recv_until(r, time.monotonic() + busy_for + 0.3, lambda o: False)
    replies = recv_until(s, time.monotonic() + a.timeout, lambda o: len(o) >= a.count)
    hs = [h for h in (unpack(d) for d, _, _ in loads) if h and h["type"] == T_LOAD]
    busy = [h for h in hs if h["queue_depth"] > 0]
    print(f"loads={len(hs)} while_queued={len(busy)} "
          f"queue={[h['queue_depth'] for h in hs]} inflight={[h['inflight'] for h in hs]} "
          f"util={[h['util'] for h in hs]} worker_us={[h['worker_us'] for h in hs]}")
    if len(busy) < 3:
        fail("fewer than 3 LOADs while requests were queued")
    depths = [h["queue_depth"] for h in busy]
    # A LOAD may go while this loop is still sending: the queue fills up to
    # its peak, then drains, one request each service time.
    draining = depths[depths.index(max(depths)):]
    if len(draining) < 3 or draining != sorted(draining, reverse=True) or max(depths) > a.count:
        fail(f"queue_depth does not drain: {depths}")
    if any(h["inflight"] != 1 for h in busy):
        fail("inflight is not 1 (one slot, batches of one) while requests wait")
    if any(h["capacity"] != a.capacity for h in hs):
        fail(f"capacity not {a.capacity}")
    # util covers the interval before the LOAD: the ones after the first are busy
    if any(h["util"] < 200 for h in busy[1:]):
        fail("util below 200/255 while the only slot is busy")
    if any(not 0.9 * a.svc_us <= h["worker_us"] <= 1.6 * a.svc_us for h in busy):
        fail(f"LOAD worker_us is not the mean service time ({a.svc_us} us)")
    if hs and (hs[-1]["queue_depth"] or hs[-1]["inflight"] or hs[-1]["util"] > 50):
        fail("the last LOAD, after the work, is not idle")
    if len(replies) != a.count:
        fail(f"{a.count - len(replies)} requests unanswered")
    return 1 if errors else 0


def cmd_delay(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    base = random.getrandbits(40) << 20
    for i in range(a.count):
        t0 = time.monotonic()
        s.sendto(request(base + i)[1], to)
        got = recv_until(s, t0 + 2.0, lambda o: o)
        if not got:
            fail("no REPLY in 2 s")
            continue
        data, _, t1 = got[0]
        h = unpack(data)
        rtt = (t1 - t0) * 1e6
        print(f"REPLY rtt_us={rtt:.0f} worker_us={h['worker_us']}")
        if rtt < a.delay_us:
            fail(f"REPLY after {rtt:.0f} us, before the {a.delay_us} us hold")
        if h["worker_us"] >= a.delay_us:
            fail(f"worker_us {h['worker_us']} counts the {a.delay_us} us hold")
    t0 = time.monotonic()
    s.sendto(pack(type=T_PROBE, router_ts=9), to)
    got = recv_until(s, t0 + 2.0, lambda o: o)
    if not got:
        fail("no PROBE_ACK in 2 s")
    else:
        rtt = (got[0][2] - t0) * 1e6
        print(f"PROBE_ACK rtt_us={rtt:.0f}")
        if rtt < a.delay_us:
            fail(f"PROBE_ACK after {rtt:.0f} us, before the {a.delay_us} us hold")
    return 1 if errors else 0


def cmd_overload(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    base = random.getrandbits(40) << 20
    sent = {}
    t0 = time.monotonic()
    for i in range(a.count):
        h, d = request(base + i, b"p")
        sent[base + i] = h
        s.sendto(d, to)
    got = recv_until(s, t0 + a.timeout, lambda o: len(o) >= a.count)
    kinds, seen, busy_at = {}, {}, []
    for data, _, t in got:
        h = unpack(data)
        rid = h["request_id"]
        if rid not in sent:
            continue
        seen[rid] = seen.get(rid, 0) + 1
        if seen[rid] > 1:
            fail(f"request {rid} answered twice")
        key = (h["type"], h["status"])
        kinds[key] = kinds.get(key, 0) + 1
        if h["type"] == T_BUSY:
            busy_at.append(t - t0)
            for f in IDENTITY:
                if h[f] != sent[rid][f]:
                    fail(f"BUSY {rid}: {f} not echoed")
    replies = kinds.get((T_REPLY, 0), 0)
    busy = kinds.get((T_BUSY, BUSY_OVERLOAD), 0)
    print(f"sent={a.count} replies={replies} busy_overload={busy} other="
          f"{sum(kinds.values()) - replies - busy} "
          f"busy_by_ms={max(busy_at) * 1000 if busy_at else 0:.1f}")
    if len(seen) != a.count:
        fail(f"{a.count - len(seen)} requests unanswered")
    if busy < a.count - a.queue - 2 or replies < a.queue:
        fail(f"expected about {a.count - a.queue - 1} BUSY/OVERLOAD and {a.queue + 1} REPLY")
    if busy_at and max(busy_at) > 0.5 * a.timeout:
        fail("BUSY was not sent at once")
    return 1 if errors else 0


def cmd_drain(a):
    to = parse_addr(a.to)
    s = sock_for(to)
    r_addr = parse_addr(a.router_at)
    r = sock_for(r_addr)
    r.bind(r_addr)
    base = random.getrandbits(40) << 20
    for i in range(a.count):
        s.sendto(request(base + i, b"slow")[1], to)
    time.sleep(a.pre_ms / 1000)
    os.kill(a.pid, signal.SIGTERM)
    t_sig = time.monotonic()
    time.sleep(0.02)
    late = [base + a.count + i for i in range(a.late)]
    for rid in late:
        s.sendto(request(rid, b"late")[1], to)
    got = recv_until(s, time.monotonic() + a.timeout,
                     lambda o: len(o) >= a.count + a.late)
    replies, busy, flags = 0, 0, {}
    for data, _, t in got:
        h = unpack(data)
        rid = h["request_id"]
        if base <= rid < base + a.count:
            if h["type"] != T_REPLY or h["status"] != 0:
                fail(f"queued request {rid}: type {h['type']} status {h['status']}")
            replies += 1
            flags[rid - base] = bool(h["flags"] & F_DRAINING)
        elif rid in late:
            if h["type"] != T_BUSY or h["status"] != BUSY_DRAINING:
                fail(f"request {rid} after SIGTERM: type {h['type']} status {h['status']}, "
                     f"want BUSY {BUSY_DRAINING}")
            elif not h["flags"] & F_DRAINING:
                fail(f"BUSY {rid} without DRAINING")
            busy += 1
    # One slot, batches of one: served in order. Once a REPLY says DRAINING
    # every later one must, and all but those done before the signal do.
    seq = [flags[k] for k in sorted(flags)]
    drain_flag = sum(seq)
    if True in seq and not all(seq[seq.index(True):]):
        fail(f"DRAINING not kept once set: {seq}")
    done_before = a.pre_ms * 1000 // max(1, a.svc_us) + 1 if a.svc_us else a.count
    if drain_flag < a.count - done_before:
        fail(f"only {drain_flag} of {a.count} replies carried DRAINING: {seq}")
    # The router's view: LOADs until the worker is gone; the last one drained.
    loads = recv_until(r, time.monotonic() + 1.0, lambda o: False)
    hs = [unpack(d) for d, _, _ in loads]
    hs = [h for h in hs if h and h["type"] == T_LOAD]
    last = hs[-1] if hs else None
    print(f"queued={a.count} replied={replies} with_draining={drain_flag} late={a.late} "
          f"busy_draining={busy} loads_after={len(hs)} last_load_flags="
          f"{hex(last['flags']) if last else None}")
    if replies != a.count:
        fail(f"{a.count - replies} queued requests not answered: the queue was not finished")
    if drain_flag < 1:
        fail("no REPLY carried DRAINING")
    if busy != a.late:
        fail(f"{a.late - busy} requests after SIGTERM not answered BUSY/DRAINING")
    if not last or not last["flags"] & F_DRAINING or last["queue_depth"] or last["inflight"]:
        fail("the last LOAD is not DRAINING with an empty queue")
    return 1 if errors else 0


def cmd_scrape(a):
    with urllib.request.urlopen(a.url, timeout=5) as resp:
        body = resp.read()
        ctype = resp.headers.get("Content-Type", "")
    with open(a.out, "wb") as f:
        f.write(body)
    print(f"{len(body)} bytes, {ctype}")
    return 0 if ctype.startswith("text/plain") else 1


def cmd_metric(a):
    want = dict(kv.split("=", 1) for kv in a.label)
    with open(a.file) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            series, _, value = line.rstrip("\n").rpartition(" ")
            name, _, labels = series.partition("{")
            if name != a.name:
                continue
            got = {}
            for part in labels.rstrip("}").split('",'):
                if "=" in part:
                    k, v = part.split("=", 1)
                    got[k] = v.strip('"')
            if all(got.get(k) == v for k, v in want.items()):
                print(value)
                return 0
    print("absent")
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ports")
    c.add_argument("n", type=int)
    c = sub.add_parser("wait")
    c.add_argument("--to", required=True)
    c.add_argument("--seconds", type=float, default=10)
    for name in ("echo", "burst", "probe", "delay", "overload", "drain", "loaded", "tokens"):
        c = sub.add_parser(name)
        c.add_argument("--to", required=True)
        c.add_argument("--node-id", type=int, default=0)
        c.add_argument("--capacity", type=int, default=0)
        c.add_argument("--count", type=int, default=8)
        c.add_argument("--timeout", type=float, default=5.0)
        c.add_argument("--min-worker-us", type=int, default=0)
        c.add_argument("--delay-us", type=int, default=0)
        c.add_argument("--queue", type=int, default=0)
        c.add_argument("--router-at")
        c.add_argument("--pid", type=int)
        c.add_argument("--pre-ms", type=int, default=50)
        c.add_argument("--late", type=int, default=5)
        c.add_argument("--min-elapsed-ms", type=float, default=0)
        c.add_argument("--svc-min", type=int, default=0)
        c.add_argument("--svc-max", type=int, default=0)
        c.add_argument("--svc-us", type=int, default=0)
        c.add_argument("--tokens-last", type=int, default=1)
    c = sub.add_parser("heartbeats")
    c.add_argument("--at", required=True)
    c.add_argument("--node-id", type=int, required=True)
    c.add_argument("--capacity", type=int, required=True)
    c.add_argument("--interval-ms", type=float, required=True)
    c.add_argument("--seconds", type=float, default=1.0)
    c = sub.add_parser("scrape")
    c.add_argument("--url", required=True)
    c.add_argument("--out", required=True)
    c = sub.add_parser("metric")
    c.add_argument("--file", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--label", action="append", default=[])
    a = p.parse_args()
    rc = globals()["cmd_" + a.cmd](a)
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
