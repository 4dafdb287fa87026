#!/usr/bin/env python3
"""cpn security e2e helper: joins, captured datagrams sent again, floods.

  node   --listen ADDR:PORT --node-id K --router ADDR:PORT[,...] [--key HEX32]
         [--join-key HEX32] [--duration S] [--load-interval S] [--first-load FILE]
      A node: LOAD heartbeats to every --router (FRESH and signed with --key;
      with --join-key, signed with it and carrying the join tag for its own
      address and port, docs/PROTOCOL.md "Joins"), REQUEST answered with a
      signed REPLY, PROBE with a PROBE_ACK echoing the cookie. Takes the
      arguments tools/testbed gives a node program (TESTBED_WORKER). The
      wall-clock time of its first LOAD goes to --first-load.
  load   --to ADDR:PORT --bind ADDR[:PORT] --node-id K --key HEX32
         [--no-fresh] [--stamp-offset-ms MS] [--join-for ADDR:PORT] [--no-join-tag]
         [--count N] [--out FILE]
      One LOAD built by hand (a join when --join-for, default the --bind
      address and port), sent --count times; its bytes in hex to --out.
  send   --to ADDR:PORT --bind ADDR[:PORT] --hex FILE [--count N] [--rate R]
      Datagrams given in hex (one a line), sent again as they are.
  flood  --to ADDR:PORT --bind ADDR[:PORT] --rate R --duration S
         [--hex FILE] [--key HEX32]
      LOADs at R a second for S seconds (both bounded): the datagrams of
      --hex, or forged joins (random node ids, tags under --key or a random
      key). Prints sent=N rate=R.

  raw    --src ADDR:PORT --to ADDR:PORT (--hex FILE | --load-for K)
         [--kind load|probe|reply] [--key HEX32] [--stamp-offset-ms MS]
         [--queue N] [--router-ts-ago-us US] [--cookie-key HEX32]
         [--count N] [--bad-udp-csum]
      Datagrams with a forged source address (a raw socket): those of --hex,
      or a message of node K: a LOAD reporting --queue requests waiting, a
      PROBE (router_ts that long ago; the cookie under --cookie-key, else
      none) or a REPLY to --to (service 1, tenant 42); signed with --key
      (FRESH) when given; --bad-udp-csum spoils the UDP checksum.
  request --to ADDR:PORT --bind ADDR[:PORT] --service S --tenant T --count N
         [--timeout S] [--tenant-key HEX32] [--replay] [--tagged-node K
         [--hop-key HEX32]]
      REQUESTs sent to ADDR:PORT (a node, skipping the router, or a VIP),
      signed FRESH with --tenant-key; --replay sends the first one --count
      times; --tagged-node claims node K (TAGGED), with a hop tag under
      --hop-key or a made-up one; prints sent=N answered=M.

Everything is bounded in count and time.
"""
import argparse
import os
import random
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpn_udp import (HDR, MAGIC, T_LOAD, T_PROBE, T_PROBE_ACK, T_REPLY,  # noqa: E402
                     T_REQUEST, F_AUTH, F_TAGGED, addr_port, node_tag, pack, siphash24,
                     unpack)

F_FRESH = 0x0100
MAX_COUNT = 1_000_000
MAX_SECONDS = 60.0


def tai_ms():
    """CLOCK_TAI in ms mod 2^32, as a FRESH stamp."""
    return int(time.clock_gettime(time.CLOCK_TAI) * 1000) & 0xFFFFFFFF


def addr16(ip):
    """An address as 16 bytes, IPv4 as ::ffff:a.b.c.d."""
    if ":" in ip:
        return socket.inet_pton(socket.AF_INET6, ip)
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(ip)


def join_tag(key, tag, ip, port):
    """cpn_tag_join(): the join key over the node's tag, the address as 16
    bytes and {port (network order), 0}."""
    msg = tag + addr16(ip) + struct.pack("!H", port) + b"\0" * 6
    return siphash24(key, msg).to_bytes(8, "little")


def signed(key, fresh=True, stamp=None, **kw):
    """A node's datagram: FRESH with the stamp (when fresh), AUTH and the tag
    under key (when key)."""
    if fresh:
        kw["flags"] = kw.get("flags", 0) | F_FRESH
        kw["stamp"] = tai_ms() if stamp is None else stamp & 0xFFFFFFFF
    if not key:
        return pack(**kw)
    kw["flags"] = kw.get("flags", 0) | F_AUTH
    h = pack(**kw)
    return h + node_tag(key, h)


def join_load(key, node_id, ip, port, fresh=True, stamp=None, with_tag=True, **kw):
    """A LOAD that asks to join from ip:port: signed with the join key, its
    join tag as the payload."""
    d = signed(key, fresh=fresh, stamp=stamp, type=T_LOAD, node_id=node_id, **kw)
    if with_tag:
        d += join_tag(key, d[HDR.size:HDR.size + 8], ip, port)
    return d


def hexkey(s):
    if len(s) != 32:
        raise argparse.ArgumentTypeError("a key is 32 hex digits")
    return bytes.fromhex(s)


def bind_sock(spec):
    host, _, port = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port) if port else 0))
    return s


def node(a):
    ip, port = addr_port(a.listen)
    routers = [addr_port(r) for r in a.router.split(",")]
    s = bind_sock(a.listen)
    s.setblocking(False)
    key = a.join_key or a.key
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + min(a.duration, 3600.0)
    next_load = 0.0
    served = probes = 0
    load = dict(capacity=8, worker_us=200)
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        if now >= next_load:
            if a.join_key:
                d = join_load(key, a.node_id, ip, port, **load)
            else:
                d = signed(key, type=T_LOAD, node_id=a.node_id, **load)
            for r in routers:
                s.sendto(d, r)
            if a.first_load and not os.path.exists(a.first_load):
                with open(a.first_load, "w") as f:
                    f.write(f"{time.time():.6f}\n")
            next_load = now + a.load_interval
        r, _, _ = select.select([s], [], [], max(0.0, min(next_load - now, 0.05)))
        if not r:
            continue
        for _ in range(256):
            try:
                data, src = s.recvfrom(65535)
            except BlockingIOError:
                break
            h = unpack(data)
            if h is None or h["magic"] != MAGIC:
                continue
            if h["type"] == T_REQUEST:
                served += 1
                body = data[HDR.size + (8 if h["flags"] & F_AUTH else 0):]
                s.sendto(signed(key, type=T_REPLY, service_id=h["service_id"],
                                tenant_id=h["tenant_id"], session_key=h["session_key"],
                                request_id=h["request_id"], node_id=a.node_id,
                                hops=h["hops"], class_=h["class_"], router_ts=h["router_ts"],
                                **load) + body, src)
            elif h["type"] == T_PROBE:
                probes += 1
                s.sendto(signed(key, type=T_PROBE_ACK, node_id=a.node_id,
                                request_id=h["request_id"], router_ts=h["router_ts"],
                                **load), src)
    sys.stdout.write(f"served={served}\nprobes={probes}\n")
    return 0


def load(a):
    to = addr_port(a.to)
    s = bind_sock(a.bind)
    ip, port = s.getsockname()
    if a.join_for:
        ip, port = addr_port(a.join_for)
    stamp = (tai_ms() + a.stamp_offset_ms) & 0xFFFFFFFF
    d = join_load(a.key, a.node_id, ip, port, fresh=not a.no_fresh, stamp=stamp,
                  with_tag=not a.no_join_tag, capacity=8, worker_us=200)
    for _ in range(min(a.count, MAX_COUNT)):
        s.sendto(d, to)
    if a.out:
        with open(a.out, "a") as f:
            f.write(d.hex() + "\n")
    return 0


def send(a):
    to = addr_port(a.to)
    s = bind_sock(a.bind)
    with open(a.hex) as f:
        data = [bytes.fromhex(x.strip()) for x in f if x.strip()]
    gap = 1.0 / a.rate if a.rate > 0 else 0.0
    end = time.monotonic() + MAX_SECONDS
    for _ in range(min(a.count, MAX_COUNT)):
        for d in data:
            s.sendto(d, to)
        if gap:
            time.sleep(gap)
        if time.monotonic() > end:
            break
    return 0


def flood(a):
    to = addr_port(a.to)
    s = bind_sock(a.bind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    ip, port = s.getsockname()
    if a.hex:
        with open(a.hex) as f:
            data = [bytes.fromhex(x.strip()) for x in f if x.strip()]
    else:
        key = a.key or os.urandom(16)
        data = [join_load(key, random.randint(100, 1023), ip, port, capacity=8, worker_us=200)
                for _ in range(256)]
    rate = min(a.rate, 1_000_000.0)
    dur = min(a.duration, MAX_SECONDS)
    t0 = time.monotonic()
    sent = errs = 0
    chunk = max(1, int(rate / 1000))  # a millisecond's worth at a time
    n = len(data)
    while True:
        el = time.monotonic() - t0
        if el >= dur:
            break
        due = int(el * rate)
        if sent >= due:
            time.sleep(0.0005)
            continue
        for _ in range(min(chunk, due - sent)):
            try:
                s.sendto(data[sent % n], to)
            except OSError:
                errs += 1
            sent += 1
    el = time.monotonic() - t0
    print(f"sent={sent} rate={sent / el:.0f} errors={errs}")
    return 0


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def raw(a):
    src, sport = addr_port(a.src)
    dst, dport = addr_port(a.to)
    if a.hex:
        with open(a.hex) as f:
            data = [bytes.fromhex(x.strip()) for x in f if x.strip()]
    elif a.kind == "probe":
        # Each PROBE its own router_ts (a node answers a PROBE once).
        data = []
        t0 = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6) - a.router_ts_ago_us
        for i in range(min(a.count, MAX_COUNT)):
            rts = (t0 - i) & 0xFFFFFFFF
            rid = 0
            if a.cookie_key:
                w = struct.pack("!H", a.load_for) + b"\0\0" + struct.pack("!I", rts)
                rid = int.from_bytes(siphash24(a.cookie_key, w).to_bytes(8, "little"), "big")
            data.append(pack(type=T_PROBE, node_id=a.load_for, router_ts=rts, request_id=rid))
        a.count = 1
    elif a.kind == "reply":
        data = [signed(a.key, fresh=bool(a.key), type=T_REPLY, service_id=1, tenant_id=42,
                       request_id=random.getrandbits(63), node_id=a.load_for, capacity=8,
                       worker_us=200) + b"forged reply"]
    else:
        data = [signed(a.key, fresh=bool(a.key), stamp=(tai_ms() + a.stamp_offset_ms),
                       type=T_LOAD, node_id=a.load_for, queue_depth=a.queue, inflight=8,
                       capacity=8, util=255, worker_us=200)]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = 0
    for _ in range(min(a.count, MAX_COUNT)):
        for d in data:
            ulen = 8 + len(d)
            pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
            udp = struct.pack("!HHHH", sport, dport, ulen, 0) + d
            c = csum16(pseudo + udp) or 0xFFFF
            if a.bad_udp_csum:
                c = (c + 1) & 0xFFFF or 1
            udp = udp[:6] + struct.pack("!H", c) + udp[8:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, random.randint(1, 65535), 0,
                             64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
            ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
            s.sendto(ip + udp, (dst, 0))
            sent += 1
    print(f"sent={sent}")
    return 0


def hop_tag(key, hdr):
    """cpn_hop_tag(): the hop key over {request_id}, {tenant_id, service_id,
    node_id}, {router_ts, stamp} as they lie in the header; the first 4
    output bytes."""
    w = hdr[16:24] + hdr[8:12] + hdr[6:8] + hdr[24:26] + hdr[28:32] + hdr[44:48]
    return siphash24(key, w).to_bytes(8, "little")[:4]


def request_bytes(a, rid):
    kw = dict(type=T_REQUEST, service_id=a.service, tenant_id=a.tenant, request_id=rid)
    if a.tenant_key:
        kw.update(flags=F_AUTH | F_FRESH, stamp=tai_ms())
    if a.tagged_node:
        kw.update(flags=kw.get("flags", 0) | F_TAGGED, node_id=a.tagged_node, hops=1,
                  router_ts=int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6) & 0xFFFFFFFF)
    h = bytearray(pack(**kw))
    if a.tagged_node:
        h[40:44] = hop_tag(a.hop_key, bytes(h)) if a.hop_key else os.urandom(4)
    tag = b""
    if a.tenant_key:
        signed_part = bytearray(h[:24])
        signed_part[4:6] = struct.pack("!H", struct.unpack("!H", h[4:6])[0] & ~F_TAGGED)
        w = bytes(signed_part) + h[44:48] + b"\0" * 4
        tag = siphash24(a.tenant_key, w).to_bytes(8, "little")
    return bytes(h) + tag + b"attack"


def request(a):
    to = addr_port(a.to)
    s = bind_sock(a.bind)
    s.settimeout(0.05)
    rid0 = random.getrandbits(48)
    d = None
    for i in range(min(a.count, MAX_COUNT)):
        if d is None or not a.replay:
            d = request_bytes(a, rid0 + i)
        s.sendto(d, to)
    answered = 0
    end = time.monotonic() + min(a.timeout, MAX_SECONDS)
    while time.monotonic() < end:
        try:
            d, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        h = unpack(d)
        if h and h["magic"] == MAGIC and h["type"] in (T_REPLY, 6):
            answered += 1
    print(f"sent={a.count} answered={answered}")
    return 0


def raw_send(s, src, sport, dst, dport, d):
    """One UDP datagram from src:sport (forged) to dst:dport on a raw socket."""
    ulen = 8 + len(d)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + d
    c = csum16(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, random.randint(1, 65535), 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
    s.sendto(ip + udp, (dst, 0))


def race_client(a):
    """A client's requests with ids --rid0.. from --bind (a port of its
    own); counts what comes back until --timeout: the node's echo ("attack")
    or a forged payload, at most once per id."""
    s = bind_sock(a.bind)
    to = addr_port(a.to)
    s.settimeout(0.05)
    n = min(a.count, 10000)
    genuine, forged = set(), 0
    for i in range(n):
        s.sendto(request_bytes(a, a.rid0 + i), to)
        time.sleep(0.002)
    end = time.monotonic() + min(a.timeout, MAX_SECONDS)
    while time.monotonic() < end:
        try:
            d, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        h = unpack(d)
        if not h:
            continue
        if d.endswith(b"forged reply"):
            forged += 1
        elif d.endswith(b"attack"):
            genuine.add(h["request_id"])
    print(f"sent={n} genuine={len(genuine)} forged={forged}")
    return 0


def race_forge(a):
    """REPLYs for ids --rid0.. forged from --src as node --node (signed with
    --key if given: a captured reply), each one datagram sent --copies times
    over --duration seconds to --to (the client)."""
    src, sport = addr_port(a.src)
    dst, dport = addr_port(a.to)
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    ds = [signed(a.key, fresh=True, type=T_REPLY, service_id=a.service, tenant_id=a.tenant,
                 request_id=a.rid0 + i, node_id=a.node, capacity=8, worker_us=100)
          + b"forged reply" for i in range(min(a.count, 10000))]
    copies = max(1, min(a.copies, 1000))
    for k in range(copies):
        for d in ds:
            raw_send(r, src, sport, dst, dport, d)
        time.sleep(min(a.duration, MAX_SECONDS) / copies)
    print(f"sent={len(ds) * copies}")
    return 0


def probe_ack(a):
    """A PROBE_ACK of node --node-id from its address (forged), signed with
    its key, the router's valid cookie for a router_ts of now: the same
    datagram --count times."""
    src, sport = addr_port(a.src)
    dst, dport = addr_port(a.to)
    rts = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6) & 0xFFFFFFFF
    w = struct.pack("!H", a.node_id) + b"\0\0" + struct.pack("!I", rts)
    rid = int.from_bytes(siphash24(a.cookie_key, w).to_bytes(8, "little"), "big")
    d = signed(a.key, fresh=True, type=T_PROBE_ACK, node_id=a.node_id, router_ts=rts,
               request_id=rid, capacity=8, worker_us=100)
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(min(a.count, 1000)):
        raw_send(r, src, sport, dst, dport, d)
    print(f"sent={min(a.count, 1000)}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("node")
    n.add_argument("--listen", required=True)
    n.add_argument("--node-id", type=int, required=True)
    n.add_argument("--router", required=True)
    n.add_argument("--key", type=hexkey)
    n.add_argument("--join-key", type=hexkey)
    n.add_argument("--duration", type=float, default=600.0)
    n.add_argument("--load-interval", type=float, default=0.05)
    n.add_argument("--first-load")
    ld = sub.add_parser("load")
    ld.add_argument("--to", required=True)
    ld.add_argument("--bind", required=True)
    ld.add_argument("--node-id", type=int, required=True)
    ld.add_argument("--key", type=hexkey, required=True)
    ld.add_argument("--no-fresh", action="store_true")
    ld.add_argument("--no-join-tag", action="store_true")
    ld.add_argument("--stamp-offset-ms", type=int, default=0)
    ld.add_argument("--join-for")
    ld.add_argument("--count", type=int, default=1)
    ld.add_argument("--out")
    sd = sub.add_parser("send")
    sd.add_argument("--to", required=True)
    sd.add_argument("--bind", required=True)
    sd.add_argument("--hex", required=True)
    sd.add_argument("--count", type=int, default=1)
    sd.add_argument("--rate", type=float, default=0.0)
    fl = sub.add_parser("flood")
    fl.add_argument("--to", required=True)
    fl.add_argument("--bind", required=True)
    fl.add_argument("--rate", type=float, required=True)
    fl.add_argument("--duration", type=float, required=True)
    fl.add_argument("--hex")
    fl.add_argument("--key", type=hexkey)
    rw = sub.add_parser("raw")
    rw.add_argument("--src", required=True)
    rw.add_argument("--to", required=True)
    rw.add_argument("--hex")
    rw.add_argument("--load-for", type=int, default=0)
    rw.add_argument("--key", type=hexkey)
    rw.add_argument("--queue", type=int, default=1000)
    rw.add_argument("--count", type=int, default=1)
    rw.add_argument("--bad-udp-csum", action="store_true")
    rw.add_argument("--kind", choices=("load", "probe", "reply"), default="load")
    rw.add_argument("--stamp-offset-ms", type=int, default=0)
    rw.add_argument("--router-ts-ago-us", type=int, default=0)
    rw.add_argument("--cookie-key", type=hexkey)
    rq = sub.add_parser("request")
    rq.add_argument("--to", required=True)
    rq.add_argument("--bind", required=True)
    rq.add_argument("--service", type=int, required=True)
    rq.add_argument("--tenant", type=int, required=True)
    rq.add_argument("--count", type=int, default=1)
    rq.add_argument("--timeout", type=float, default=1.0)
    rq.add_argument("--tenant-key", type=hexkey)
    rq.add_argument("--replay", action="store_true")
    rq.add_argument("--tagged-node", type=int, default=0)
    rq.add_argument("--hop-key", type=hexkey)
    rc = sub.add_parser("race-client")
    rc.add_argument("--to", required=True)
    rc.add_argument("--bind", required=True)
    rc.add_argument("--service", type=int, required=True)
    rc.add_argument("--tenant", type=int, required=True)
    rc.add_argument("--tenant-key", type=hexkey)
    rc.add_argument("--rid0", type=int, required=True)
    rc.add_argument("--count", type=int, default=1)
    rc.add_argument("--timeout", type=float, default=1.0)
    rc.set_defaults(tagged_node=0, hop_key=None)
    rf = sub.add_parser("race-forge")
    rf.add_argument("--src", required=True)
    rf.add_argument("--to", required=True)
    rf.add_argument("--service", type=int, required=True)
    rf.add_argument("--tenant", type=int, required=True)
    rf.add_argument("--node", type=int, required=True)
    rf.add_argument("--key", type=hexkey)
    rf.add_argument("--rid0", type=int, required=True)
    rf.add_argument("--count", type=int, default=1)
    rf.add_argument("--copies", type=int, default=1)
    rf.add_argument("--duration", type=float, default=1.0)
    pa = sub.add_parser("probe-ack")
    pa.add_argument("--src", required=True)
    pa.add_argument("--to", required=True)
    pa.add_argument("--node-id", type=int, required=True)
    pa.add_argument("--key", type=hexkey, required=True)
    pa.add_argument("--cookie-key", type=hexkey, required=True)
    pa.add_argument("--count", type=int, default=1)
    a = p.parse_args()
    if a.cmd == "raw" and not a.hex and not a.load_for:
        p.error("raw: --hex FILE or --load-for K")
    return {"node": node, "load": load, "send": send, "flood": flood, "raw": raw,
            "request": request, "race-client": race_client, "race-forge": race_forge,
            "probe-ack": probe_ack}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
