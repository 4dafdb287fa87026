#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Checks of cpn-worker's freshness, hop key and joins, for
selftests/e2e/test_worker_guard.sh (standard library only). The worker is
talked to directly on 127.0.0.1; this script plays the routers: it writes
hop tags with the hop key (cpn_udp.hop_tag) and reads LOADs at a router's
control port.

  worker_guard.py reports --to A --node-id N --router-at R [--key K] [--hop-key H]
      REPLY, PROBE_ACK, LOAD and a fragment's ack carry FRESH and a stamp
      within 2 s of CLOCK_TAI, signed with the node key when there is one;
      the PROBE_ACK echoes the PROBE's request_id (the router's cookie); the
      ack of a large request's first fragment echoes router_ts and the hop
      tag (worker_us); the rest of the message, sent with both copied, is
      taken and answered whole; a large reply's CONT fragments carry the
      request's hop tag (for the client's acks).
  worker_guard.py unrouted --to A --node-id N --hop-key H --metrics URL
      Requests without TAGGED, with a wrong hop tag, or tagged for another
      node get no answer and are counted unrouted; a routed one is answered.
  worker_guard.py replay --to A --node-id N --hop-key H --metrics URL
      A routed request sent twice is answered once (counted replay); the same
      request steered again (new router_ts, new hop tag) is answered; one
      whose stamp is 10 s old is not (counted stale).
  worker_guard.py join --at R --listen A --join-key K
      The LOAD at R carries AUTH (the join key's node tag), FRESH and, as its
      8-byte payload, cpn_tag_join over A's address and port.

Each prints what it saw and exits 0 when every check held, 1 when one failed.
"""
import argparse
import os
import random
import select
import socket
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpn_udp import HDR, T_REQUEST, T_REPLY, T_LOAD, T_PROBE, T_PROBE_ACK, pack, unpack, \
    addr_port, node_tag, with_hop_tag, join_tag, tai_ms  # noqa: E402

F_TAGGED, F_AUTH, F_FRAG, F_CONT, F_FRAG_OK, F_FRESH = 0x0001, 0x0002, 0x0020, 0x0040, 0x0080, \
    0x0100
FRAG = 8

errors = []


def fail(msg):
    if len(errors) < 20:
        print(f"FAIL {msg}")
    errors.append(msg)


def key_bytes(h):
    return bytes.fromhex(h) if h else None


def parse_addr(a):
    host, port = addr_port(a)
    return host.strip("[]"), port


def recv_all(s, seconds):
    """Every datagram that arrives within `seconds`."""
    out, end = [], time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return out
        r, _, _ = select.select([s], [], [], left)
        if r:
            out.append(s.recv(65535))


def recv_one(s, seconds, want=lambda h: True):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        d = s.recv(65535)
        h = unpack(d)
        if h and want(h):
            return d, h
    return None, None


def routed(hop_key, node_id, rid=None, tenant=42, stamp=None, flags=F_FRESH, payload=b"",
           router_ts=None, **kw):
    """A REQUEST as a router steers it to node_id: TAGGED, router_ts, hop tag."""
    h = pack(type=T_REQUEST, flags=flags | F_TAGGED, service_id=3, tenant_id=tenant,
             request_id=random.getrandbits(64) if rid is None else rid, node_id=node_id,
             hops=1, router_ts=random.getrandbits(32) if router_ts is None else router_ts,
             stamp=tai_ms() if stamp is None else stamp, **kw)
    if hop_key:
        h = with_hop_tag(hop_key, h)
    return h + payload


def check_report(who, d, h, key):
    if not h["flags"] & F_FRESH:
        fail(f"{who}: no FRESH")
    skew = abs(((h["stamp"] - tai_ms() + (1 << 31)) & 0xFFFFFFFF) - (1 << 31))
    if skew > 2000:
        fail(f"{who}: stamp {skew} ms from CLOCK_TAI")
    if key:
        if not h["flags"] & F_AUTH:
            fail(f"{who}: not signed")
        elif d[HDR.size:HDR.size + 8] != node_tag(key, d[:HDR.size]):
            fail(f"{who}: the tag does not verify over the header and stamp")
    print(f"{who}: FRESH, stamp {skew} ms off{', signed' if key else ''}")


def metrics(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("cpn_worker_ignored_total{"):
            series, _, value = line.rpartition(" ")
            reason = series.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(value)
    return out


def cmd_reports(a):
    to, key, hop = parse_addr(a.to), key_bytes(a.key), key_bytes(a.hop_key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(parse_addr(a.router_at))
    # REPLY
    s.sendto(routed(hop, a.node_id, payload=b"fresh"), to)
    d, h = recv_one(s, 2, lambda h: h["type"] == T_REPLY)
    if not d:
        fail("no REPLY")
    else:
        check_report("REPLY", d, h, key)
    # PROBE_ACK: the cookie echoed
    cookie = random.getrandbits(64)
    s.sendto(pack(type=T_PROBE, request_id=cookie, node_id=a.node_id, router_ts=12345), to)
    d, h = recv_one(s, 2, lambda h: h["type"] == T_PROBE_ACK)
    if not d:
        fail("no PROBE_ACK")
    else:
        check_report("PROBE_ACK", d, h, key)
        if h["request_id"] != cookie:
            fail(f"PROBE_ACK request_id {h['request_id']:#x}, want the cookie {cookie:#x}")
        else:
            print("PROBE_ACK: the cookie echoed")
    # LOAD
    d, h = recv_one(r, 2, lambda h: h["type"] == T_LOAD)
    if not d:
        fail("no LOAD")
    else:
        check_report("LOAD", d, h, key)
    # A large request: the first fragment's ack echoes router_ts and the hop tag
    total, n = 5000, 1000
    body = os.urandom(total)
    rid, rts = random.getrandbits(64), random.getrandbits(32)
    stamp = tai_ms()
    first = routed(hop, a.node_id, rid=rid, stamp=stamp, router_ts=rts, flags=F_FRESH | F_FRAG)
    hop_bytes = first[40:44]
    s.sendto(first + total.to_bytes(4, "big") + (0).to_bytes(4, "big") + body[:n], to)
    d, h = recv_one(s, 2, lambda h: h["type"] == T_REPLY and h["request_id"] == rid)
    if not d:
        fail("no ack of the first fragment")
        return 1
    check_report("ack", d, h, key)
    if h["flags"] & (F_FRAG | F_CONT) != F_FRAG | F_CONT:
        fail(f"ack flags {h['flags']:#x}")
    if h["router_ts"] != rts or d[40:44] != hop_bytes:
        fail(f"ack router_ts {h['router_ts']:#x} worker_us {d[40:44].hex()}, "
             f"want {rts:#x} {hop_bytes.hex()}")
    else:
        print("ack: router_ts and hop tag echoed")
    # The rest with FRAG|CONT|TAGGED, the node id, router_ts and hop tag copied.
    for off in range(n, total, n):
        hd = pack(type=T_REQUEST, flags=F_FRESH | F_FRAG | F_CONT | F_TAGGED, service_id=3,
                  tenant_id=42, request_id=rid, node_id=h["node_id"], hops=1,
                  router_ts=h["router_ts"], stamp=stamp)
        hd = hd[:40] + d[40:44] + hd[44:]
        s.sendto(hd + total.to_bytes(4, "big") + off.to_bytes(4, "big") + body[off:off + n], to)
    got = b""
    for _ in range(10):
        d2, h2 = recv_one(s, 2, lambda h: h["type"] == T_REPLY and h["request_id"] == rid)
        if not d2:
            break
        if h2["flags"] & F_FRAG and len(d2) == HDR.size + (8 if key else 0) + FRAG:
            continue  # another ack
        got = d2[HDR.size + (8 if key else 0):]
        break
    if got != body:
        fail(f"the large request's reply: {len(got)} bytes, want the {total} sent")
    else:
        print(f"large request: {total} bytes in fragments with the copied hop tag, echoed")
    # A large reply (FRAG_OK): its CONT fragments carry the request's hop tag
    # (the client's acks copy it), the last one the node's time.
    req = routed(hop, a.node_id, flags=F_FRESH | F_FRAG_OK, payload=body)
    s.sendto(req, to)
    conts = last = 0
    for _ in range(20):
        d3, h3 = recv_one(s, 2, lambda h: h["type"] == T_REPLY and
                          h["request_id"] == unpack(req)["request_id"])
        if not d3:
            break
        if h3["flags"] & (F_FRAG | F_CONT) == F_FRAG | F_CONT:
            conts += 1
            if d3[40:44] != req[40:44] or h3["router_ts"] != unpack(req)["router_ts"]:
                fail(f"a CONT reply fragment: worker_us {d3[40:44].hex()}, want the hop tag "
                     f"{req[40:44].hex()}")
        elif h3["flags"] & F_FRAG:
            last += 1
            break
    if conts < 3 or last != 1:
        fail(f"large reply: {conts} CONT fragments and {last} last, want 3 or more and 1")
    else:
        print(f"large reply: {conts} CONT fragments carry the hop tag")
    return 1 if errors else 0


def expect_silence(s, to, dgram, who):
    s.sendto(dgram, to)
    got = recv_all(s, 0.3)
    if got:
        fail(f"{who}: answered ({len(got)} datagram(s))")
    else:
        print(f"{who}: no answer")


def expect_reply(s, to, dgram, who):
    s.sendto(dgram, to)
    rid = unpack(dgram)["request_id"]
    d, h = recv_one(s, 2, lambda h: h["request_id"] == rid)
    if not d or h["type"] != T_REPLY or h["status"] != 0:
        fail(f"{who}: no REPLY")
    else:
        print(f"{who}: answered")


def cmd_unrouted(a):
    to, hop = parse_addr(a.to), key_bytes(a.hop_key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    before = metrics(a.metrics).get("unrouted", 0)
    ok = routed(hop, a.node_id, payload=b"x")
    untagged = bytearray(ok)
    untagged[4:6] = (int.from_bytes(ok[4:6], "big") & ~F_TAGGED).to_bytes(2, "big")
    expect_silence(s, to, bytes(untagged), "not TAGGED")
    bad = bytearray(ok)
    bad[40] ^= 0x5A
    expect_silence(s, to, bytes(bad), "a wrong hop tag")
    expect_silence(s, to, routed(hop, a.node_id + 1, payload=b"x"), "tagged for another node")
    expect_silence(s, to, routed(None, a.node_id, payload=b"x"), "no hop tag")
    expect_reply(s, to, ok, "routed")
    got = metrics(a.metrics).get("unrouted", 0) - before
    if got != 4:
        fail(f"cpn_worker_ignored_total{{reason=unrouted}} grew by {got}, want 4")
    else:
        print("unrouted: 4 counted")
    return 1 if errors else 0


def cmd_replay(a):
    to, hop = parse_addr(a.to), key_bytes(a.hop_key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    before = metrics(a.metrics)
    rid = random.getrandbits(64)
    first = routed(hop, a.node_id, rid=rid, payload=b"once")
    expect_reply(s, to, first, "routed")
    expect_silence(s, to, first, "the same again")
    expect_reply(s, to, routed(hop, a.node_id, rid=rid, payload=b"once"), "steered again")
    expect_silence(s, to, routed(hop, a.node_id, stamp=(tai_ms() - 10000) & 0xFFFFFFFF,
                                 payload=b"old"), "stamped 10 s ago")
    after = metrics(a.metrics)
    for reason, want in (("replay", 1), ("stale", 1)):
        got = after.get(reason, 0) - before.get(reason, 0)
        if got != want:
            fail(f"cpn_worker_ignored_total{{reason={reason}}} grew by {got}, want {want}")
        else:
            print(f"{reason}: {want} counted")
    return 1 if errors else 0


def cmd_join(a):
    key = key_bytes(a.join_key)
    host, port = parse_addr(a.listen)
    addr16 = bytes(10) + b"\xff\xff" + socket.inet_aton(host)
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(parse_addr(a.at))
    n = 0
    for d in recv_all(r, 0.5):
        h = unpack(d)
        if not h or h["type"] != T_LOAD:
            continue
        n += 1
        if h["flags"] & (F_AUTH | F_FRESH) != F_AUTH | F_FRESH:
            fail(f"LOAD flags {h['flags']:#x}: want AUTH and FRESH")
        if len(d) != HDR.size + 16:
            fail(f"LOAD of {len(d)} bytes, want header, tag and the 8-byte join tag")
            continue
        if d[HDR.size:HDR.size + 8] != node_tag(key, d[:HDR.size]):
            fail("LOAD: the tag is not the join key's")
        if d[HDR.size + 8:] != join_tag(key, d[:HDR.size], addr16, port):
            fail("LOAD: the join tag does not verify for the node's address and port")
        # From another address or port it would not.
        if d[HDR.size + 8:] == join_tag(key, d[:HDR.size], addr16, port + 1):
            fail("LOAD: the join tag verifies for another port")
    if not n:
        fail("no LOAD")
    else:
        print(f"{n} LOADs, each with a join tag that verifies for {a.listen}")
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("reports")
    p.add_argument("--to", required=True)
    p.add_argument("--node-id", type=int, required=True)
    p.add_argument("--router-at", required=True)
    p.add_argument("--key")
    p.add_argument("--hop-key")
    p.set_defaults(fn=cmd_reports)
    for name, fn in (("unrouted", cmd_unrouted), ("replay", cmd_replay)):
        p = sub.add_parser(name)
        p.add_argument("--to", required=True)
        p.add_argument("--node-id", type=int, required=True)
        p.add_argument("--hop-key", required=True)
        p.add_argument("--metrics", required=True)
        p.set_defaults(fn=fn)
    p = sub.add_parser("join")
    p.add_argument("--at", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--join-key", required=True)
    p.set_defaults(fn=cmd_join)
    a = ap.parse_args()
    rc = a.fn(a)
    return 1 if errors else rc


if __name__ == "__main__":
    sys.exit(main())
