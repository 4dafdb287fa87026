#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""cpn datagrams over plain UDP sockets, for the e2e tests (standard library only).

  cpn_udp.py node --listen IP:PORT --node-id N [--iface IF] [--ready FILE] [--timeout S]
      Receive one REQUEST on a socket bound to IP:PORT, check that the
      router tagged it for node N (TAGGED, node_id N, hops 1), answer the
      sender with a REPLY that carries a load report (queue 2, inflight 1,
      capacity 6, util 64, worker_us 150).

  cpn_udp.py client --to VIP:PORT --service S --tenant T [--expect-node N] [--iface IF]
                    [--timeout S]
      Send one REQUEST to VIP:PORT and wait for its REPLY, which must come
      from VIP:PORT (the router's reverse NAT) and echo the request.

With --iface, the datagram received is also read as a whole frame from a
packet socket on IF, and its IPv4 header and UDP checksums are verified
here: the kernel verifies them too, but not on every path (a frame that a
veth hands over as CHECKSUM_UNNECESSARY is not checked again).

  cpn_udp.py serve --listen IP:PORT --node-id N [--load-to IP:PORT] [--capacity C]
                   [--svc-us US] [--duration S] [--stats FILE]
                   [--load-interval S] [--auth-key HEX32]
      A worker for traffic tests: answer every REQUEST at once with a REPLY
      carrying its load, answer PROBE with PROBE_ACK, send a LOAD heartbeat
      to --load-to every --load-interval seconds (default 0.05); run for
      --duration seconds or until SIGTERM, then write served=N and probes=N
      to --stats (or stdout). With --auth-key, every LOAD, REPLY and
      PROBE_ACK carries AUTH and the node tag (docs/PROTOCOL.md): SipHash-2-4
      with that key over the 48-byte header, appended after it.

  cpn_udp.py stream --to VIP:PORT --service S --tenant T --count N --rate R
                    [--timeout S] [--json FILE]
      A counted stream: N REQUESTs paced at R per second, every one with its
      own request_id; waits --timeout after the last for the replies. Prints
      sent, replied, busy, lost and the share per node; exits 0 only when
      every request got exactly one REPLY from VIP:PORT.

Each prints what it saw as key=value lines and exits 0 when every check
holds, 1 when one fails, 3 on timeout, 2 on bad usage.
"""
import json
import select
import signal
import argparse
import random
import socket
import struct
import sys
import time

MAGIC, VERSION = 0x4350, 1
T_REQUEST, T_REPLY, T_LOAD, T_PROBE, T_PROBE_ACK, T_BUSY = 1, 2, 3, 4, 5, 6
F_TAGGED = 0x0001
F_AUTH = 0x0002
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # <linux/in.h>; absent from some Pythons
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
# docs/PROTOCOL.md, include/cpn/proto.h: 48 bytes, network byte order.
HDR = struct.Struct("!HBBHHIIQHBBIHHHBBII")
FIELDS = ("magic", "version", "type", "flags", "service_id", "tenant_id", "session_key",
          "request_id", "node_id", "hops", "class_", "router_ts", "queue_depth", "inflight",
          "capacity", "util", "status", "worker_us", "stamp")
assert HDR.size == 48
PAYLOAD = b"cpn e2e round trip payload\n"
REPLY_LOAD = dict(queue_depth=2, inflight=1, capacity=6, util=64, worker_us=150)


def pack(**kw):
    h = dict.fromkeys(FIELDS, 0)
    h.update(magic=MAGIC, version=VERSION)
    h.update(kw)
    return HDR.pack(*(h[f] for f in FIELDS))


def unpack(data):
    if len(data) < HDR.size:
        return None
    return dict(zip(FIELDS, HDR.unpack_from(data)))


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF


def siphash24(key, msg):
    """SipHash-2-4 of msg with the 16-byte key (k0, k1 read little-endian)."""
    mask = 0xFFFFFFFFFFFFFFFF
    k0, k1 = struct.unpack("<QQ", key)
    v = [0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1,
         0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    full = len(msg) // 8 * 8
    for i in range(0, full, 8):
        m = int.from_bytes(msg[i:i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    b = ((len(msg) & 0xFF) << 56) | int.from_bytes(msg[full:], "little")
    v[3] ^= b
    rounds(2)
    v[0] ^= b
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def node_tag(key, hdr):
    """The tag of a REPLY, LOAD or PROBE_ACK: the node key over the whole
    header, the 8 output bytes little-endian, as they go on the wire."""
    return siphash24(key, hdr[:HDR.size]).to_bytes(8, "little")


def hop_tag(key, hdr):
    """A steered REQUEST's hop tag (cpn_hop_tag): the hop key over
    {request_id}, {tenant_id, service_id, node_id}, {router_ts, stamp} as
    they lie in the header; the first 4 output bytes, the worker_us bytes."""
    msg = hdr[16:24] + hdr[8:12] + hdr[6:8] + hdr[24:26] + hdr[28:32] + hdr[44:48]
    return siphash24(key, msg).to_bytes(8, "little")[:4]


def with_hop_tag(key, hdr):
    """hdr (48 bytes) with its hop tag written into worker_us."""
    return hdr[:40] + hop_tag(key, hdr) + hdr[44:]


def join_tag(key, hdr, addr16, port):
    """A join's tag (cpn_tag_join): the join key over the node's tag of the
    header, the node's address as 16 bytes and {port (network order), 0}."""
    msg = node_tag(key, hdr) + addr16 + struct.pack("!H", port) + bytes(6)
    return siphash24(key, msg).to_bytes(8, "little")


def tai_ms():
    """CLOCK_TAI in ms, mod 2^32: a FRESH stamp."""
    return int(time.clock_gettime(time.CLOCK_TAI) * 1000) & 0xFFFFFFFF


def pack_signed(key, **kw):
    """A node's header, with AUTH and the tag after it when key is set."""
    if not key:
        return pack(**kw)
    kw["flags"] = kw.get("flags", 0) | F_AUTH
    h = pack(**kw)
    return h + node_tag(key, h)


def addr_port(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def show(who, h):
    print(f"{who}: type={h['type']} flags=0x{h['flags']:04x} service_id={h['service_id']} "
          f"tenant_id={h['tenant_id']} request_id={h['request_id']} node_id={h['node_id']} "
          f"hops={h['hops']} router_ts={h['router_ts']}")


def csum_ok(data):
    """The ones' complement sum of data (with its checksum field) is all ones."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def open_capture(iface):
    if not iface:
        return None
    c = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    c.bind((iface, ETH_P_IP))
    return c


def check_frame(cap, who, request_id, errs):
    """Find the received frame of `request_id` on the packet socket; verify it."""
    if cap is None:
        return
    deadline = time.monotonic() + 1.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            errs.append("the frame was not seen on the packet socket")
            return
        cap.settimeout(left)
        try:
            frame, sll = cap.recvfrom(65535)
        except socket.timeout:
            continue
        if sll[2] == PACKET_OUTGOING or len(frame) < 14 + 20:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        tot = int.from_bytes(ip[2:4], "big")
        if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP or tot > len(ip):
            continue
        udp = ip[ihl:tot]
        h = unpack(udp[8:])
        if h is None or h["request_id"] != request_id:
            continue
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        sport, dport, ulen, ucsum = struct.unpack("!HHHH", udp[:8])
        ip_ok = csum_ok(ip[:ihl])
        pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))
        udp_ok = ucsum != 0 and ulen == len(udp) and csum_ok(pseudo + udp)
        print(f"{who}: frame {src}:{sport} > {dst}:{dport} ttl={ip[8]} udp_len={ulen} "
              f"udp_csum=0x{ucsum:04x} ip_csum_ok={int(ip_ok)} udp_csum_ok={int(udp_ok)}")
        if not ip_ok:
            errs.append("IPv4 header checksum wrong")
        if not udp_ok:
            errs.append("UDP checksum wrong or absent")
        return


def node(a):
    ip, port = addr_port(a.listen)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_IP, IP_PKTINFO, 1)
    s.bind((ip, port))
    if a.load_to:
        # A heartbeat first, so that the router knows the node as live.
        s.sendto(pack(type=T_LOAD, node_id=a.node_id, capacity=8, worker_us=100),
                 addr_port(a.load_to))
    s.settimeout(a.timeout)
    cap = open_capture(a.iface)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    try:
        data, anc, _, src = s.recvmsg(65535, socket.CMSG_SPACE(12))
    except socket.timeout:
        print("node: timeout: no request arrived")
        return 3
    dst = "?"
    for level, typ, val in anc:
        if level == socket.SOL_IP and typ == IP_PKTINFO and len(val) >= 12:
            dst = socket.inet_ntoa(val[8:12])  # struct in_pktinfo: ipi_addr
    print(f"node: from={src[0]}:{src[1]} dst={dst}:{port} len={len(data)}")
    h = unpack(data)
    if h is None:
        print("node: FAIL datagram shorter than the cpn header")
        return 1
    show("node", h)
    # Checked on the raw bytes: flags at 4-5, node_id at 24-25, hops at 26.
    flags = int.from_bytes(data[4:6], "big")
    node_id = int.from_bytes(data[24:26], "big")
    errs = []
    if h["magic"] != MAGIC or h["version"] != VERSION or h["type"] != T_REQUEST:
        errs.append("not a cpn v1 REQUEST")
    if dst not in ("?", ip):
        errs.append(f"destination {dst}, expected {ip}")
    if not flags & F_TAGGED:
        errs.append("TAGGED not set")
    if node_id != a.node_id:
        errs.append(f"node_id {node_id}, expected {a.node_id}")
    if data[26] != 1:
        errs.append(f"hops {data[26]}, expected 1")
    if data[HDR.size:] != PAYLOAD:
        errs.append("payload changed")
    check_frame(cap, "node", h["request_id"], errs)
    # Answer as a worker would: echo the identity and router_ts, report load.
    reply = pack(type=T_REPLY, service_id=h["service_id"], tenant_id=h["tenant_id"],
                 session_key=h["session_key"], request_id=h["request_id"], node_id=a.node_id,
                 hops=h["hops"], class_=h["class_"], router_ts=h["router_ts"], status=0,
                 **REPLY_LOAD)
    s.sendto(reply + data[HDR.size:], src)
    print(f"node: replied to {src[0]}:{src[1]}")
    for e in errs:
        print(f"node: FAIL {e}")
    return 1 if errs else 0


def client(a):
    vip, port = addr_port(a.to)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cap = open_capture(a.iface)
    rid = random.getrandbits(63) | 1
    s.sendto(pack(type=T_REQUEST, service_id=a.service, tenant_id=a.tenant, request_id=rid) +
             PAYLOAD, (vip, port))
    me = s.getsockname()
    print(f"client: sent REQUEST request_id={rid} from {me[0]}:{me[1]} to {vip}:{port}")
    deadline = time.monotonic() + a.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("client: timeout: no reply arrived")
            return 3
        s.settimeout(left)
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            continue
        h = unpack(data)
        print(f"client: from={src[0]}:{src[1]} len={len(data)}")
        if h is None or h["request_id"] != rid:
            continue  # not ours: keep waiting
        show("client", h)
        errs = []
        if src != (vip, port):
            errs.append(f"source {src[0]}:{src[1]}, expected {vip}:{port} (reverse NAT)")
        if h["type"] != T_REPLY:
            errs.append(f"type {h['type']}, expected REPLY")
        if a.expect_node and h["node_id"] != a.expect_node:
            errs.append(f"node_id {h['node_id']}, expected {a.expect_node}")
        if h["service_id"] != a.service:
            errs.append(f"service_id {h['service_id']}, expected {a.service}")
        if data[HDR.size:] != PAYLOAD:
            errs.append("payload changed")
        check_frame(cap, "client", rid, errs)
        for e in errs:
            print(f"client: FAIL {e}")
        return 1 if errs else 0


def serve(a):
    ip, port = addr_port(a.listen)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.setblocking(False)
    load_to = addr_port(a.load_to) if a.load_to else None
    key = bytes.fromhex(a.auth_key) if a.auth_key else None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    served = probes = 0
    end = time.monotonic() + a.duration
    next_load = 0.0
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    while not stop and time.monotonic() < end:
        now = time.monotonic()
        if load_to and now >= next_load:
            s.sendto(pack_signed(key, type=T_LOAD, node_id=a.node_id, capacity=a.capacity,
                                 worker_us=a.svc_us), load_to)
            next_load = now + a.load_interval
        r, _, _ = select.select([s], [], [], max(0.0, min(next_load - now, 0.05)))
        if not r:
            continue
        while True:
            try:
                data, src = s.recvfrom(65535)
            except BlockingIOError:
                break
            h = unpack(data)
            if h is None or h["magic"] != MAGIC:
                continue
            if h["type"] == T_REQUEST:
                served += 1
                s.sendto(pack_signed(key, type=T_REPLY, service_id=h["service_id"],
                                     tenant_id=h["tenant_id"], session_key=h["session_key"],
                                     request_id=h["request_id"], node_id=a.node_id,
                                     hops=h["hops"], class_=h["class_"],
                                     router_ts=h["router_ts"], capacity=a.capacity,
                                     worker_us=a.svc_us) + data[HDR.size:], src)
            elif h["type"] == T_PROBE:
                probes += 1
                s.sendto(pack_signed(key, type=T_PROBE_ACK, node_id=a.node_id,
                                     request_id=h["request_id"],  # the router's cookie
                                     router_ts=h["router_ts"], capacity=a.capacity,
                                     worker_us=a.svc_us), src)
    out = f"served={served}\nprobes={probes}\n"
    if a.stats:
        with open(a.stats, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


def stream(a):
    vip, port = addr_port(a.to)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setblocking(False)
    base = random.getrandbits(40) << 20
    pending = {}
    replied = busy = dup = wrong_src = 0
    share = {}
    t0 = time.monotonic()
    sent = 0

    def drain():
        nonlocal replied, busy, dup, wrong_src
        while True:
            try:
                data, src = s.recvfrom(65535)
            except BlockingIOError:
                return
            h = unpack(data)
            if h is None:
                continue
            rid = h["request_id"]
            if rid not in pending:
                dup += 1
                continue
            del pending[rid]
            if src != (vip, port):
                wrong_src += 1
            if h["type"] == T_BUSY:
                busy += 1
            elif h["type"] == T_REPLY:
                replied += 1
                share[h["node_id"]] = share.get(h["node_id"], 0) + 1

    while sent < a.count:
        due = t0 + sent / a.rate
        now = time.monotonic()
        if now < due:
            select.select([s], [], [], due - now)
            drain()
            continue
        rid = base + sent
        pending[rid] = now
        s.sendto(pack(type=T_REQUEST, service_id=a.service, tenant_id=a.tenant, request_id=rid) +
                 PAYLOAD, (vip, port))
        sent += 1
        drain()
    end = time.monotonic() + a.timeout
    while pending and time.monotonic() < end:
        select.select([s], [], [], 0.05)
        drain()
    res = dict(sent=sent, replied=replied, busy=busy, lost=len(pending), duplicate=dup,
               wrong_source=wrong_src, share={str(k): v for k, v in sorted(share.items())},
               seconds=round(time.monotonic() - t0, 3))
    print(" ".join(f"{k}={v}" for k, v in res.items() if k != "share"),
          "share=" + ",".join(f"{k}:{v}" for k, v in res["share"].items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)
    ok = res["lost"] == 0 and busy == 0 and dup == 0 and wrong_src == 0 and replied == a.count
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("node")
    n.add_argument("--listen", required=True)
    n.add_argument("--node-id", type=int, required=True)
    n.add_argument("--iface")
    n.add_argument("--ready")
    n.add_argument("--timeout", type=float, default=5.0)
    n.add_argument("--load-to")
    v = sub.add_parser("serve")
    v.add_argument("--listen", required=True)
    v.add_argument("--node-id", type=int, required=True)
    v.add_argument("--load-to")
    v.add_argument("--capacity", type=int, default=8)
    v.add_argument("--svc-us", type=int, default=100)
    v.add_argument("--duration", type=float, default=30.0)
    v.add_argument("--stats")
    v.add_argument("--ready")
    v.add_argument("--load-interval", type=float, default=0.05)
    v.add_argument("--auth-key", type=lambda x: x if len(x) == 32 and
                   all(c in "0123456789abcdefABCDEF" for c in x) else
                   p.error("--auth-key must be 32 hex digits"))
    t = sub.add_parser("stream")
    t.add_argument("--to", required=True)
    t.add_argument("--service", type=int, required=True)
    t.add_argument("--tenant", type=int, required=True)
    t.add_argument("--count", type=int, required=True)
    t.add_argument("--rate", type=float, required=True)
    t.add_argument("--timeout", type=float, default=3.0)
    t.add_argument("--json")
    c = sub.add_parser("client")
    c.add_argument("--to", required=True)
    c.add_argument("--service", type=int, required=True)
    c.add_argument("--tenant", type=int, required=True)
    c.add_argument("--expect-node", type=int, default=0)
    c.add_argument("--iface")
    c.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()
    rc = {"node": node, "client": client, "serve": serve, "stream": stream}[a.cmd](a)
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
