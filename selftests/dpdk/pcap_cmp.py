#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Compare what a data plane transmitted (OUT.pcap) with what the XDP program
produced for the same input (EXPECTED.pcap, MANIFEST.tsv from fixture_gen),
packet for packet. Prints the first difference byte-exactly; exit 0 if the
captures agree, 1 if not, 2 on bad input.

  pcap_cmp.py EXPECTED.pcap OUT.pcap MANIFEST.tsv [--ts-spread-us N] [--hop-key HEX32]
  pcap_cmp.py --count FILE.pcap

The comparison (fixture_gen.c says why):
  compare=full  every byte of the frame, Ethernet header included.
  compare=l3    destination MAC = the manifest's neighbour MAC; source MAC not
                compared (the sending port's own); every byte from the
                Ethernet type on (VLAN tag included) equal, except in a
                steered REQUEST router_ts (the plane's clock) and the UDP
                checksum that covers it: both frames' UDP checksums must be
                right from scratch, and out_ts - expected_ts must be one
                offset for the whole capture (spread <= --ts-spread-us).
                The hop tag in worker_us covers router_ts, so it differs
                too: with --hop-key both frames' hop tags must verify.
"""
import struct
import sys

CPN_HDR_LEN = 48
T_REQUEST = 1


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, no pcap global header")
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        end = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap (magic {magic:#x})")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, not Ethernet")
    frames, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {off}")
        _, _, incl, orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            raise ValueError(f"{path}: truncated record at byte {off}")
        if incl != orig:
            raise ValueError(f"{path}: frame {len(frames) + 1} captured {incl} of {orig} bytes")
        frames.append(data[off:off + incl])
        off += incl
    return frames


def read_manifest(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            i, e, verdict, node, mode, dmac, label = line.rstrip("\n").split("\t")
            if int(e) > 0:
                rows.append({"in": int(i), "exp": int(e), "verdict": verdict, "node": int(node),
                             "mode": mode, "dmac": dmac, "label": label})
    rows.sort(key=lambda r: r["exp"])
    return rows


def l3_offset(fr):
    """Offset of the IP header and the family (4, 6 or None)."""
    if len(fr) < 14:
        return None, None
    off, et = 14, struct.unpack("!H", fr[12:14])[0]
    if et in (0x8100, 0x88A8):
        if len(fr) < 18:
            return None, None
        off, et = 18, struct.unpack("!H", fr[16:18])[0]
    return off, {0x0800: 4, 0x86DD: 6}.get(et)


def udp_view(fr):
    """(l3, l4, pay, family) of an IP/UDP frame, or None."""
    l3, fam = l3_offset(fr)
    if fam == 4 and len(fr) >= l3 + 28 and fr[l3 + 9] == 17:
        l4 = l3 + (fr[l3] & 0xF) * 4
    elif fam == 6 and len(fr) >= l3 + 48 and fr[l3 + 6] == 17:
        l4 = l3 + 40
    else:
        return None
    return l3, l4, l4 + 8, fam


def csum16(b):
    if len(b) & 1:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp_csum_ok(fr):
    l3, l4, _, fam = udp_view(fr)
    ulen = struct.unpack("!H", fr[l4 + 4:l4 + 6])[0]
    if l4 + ulen > len(fr) or ulen < 8:
        return False
    if fam == 4:
        if fr[l4 + 6:l4 + 8] == b"\0\0":
            return True
        pseudo = fr[l3 + 12:l3 + 20] + struct.pack("!HH", 17, ulen)
    else:
        pseudo = fr[l3 + 8:l3 + 40] + struct.pack("!HH", 17, ulen)
    return csum16(pseudo + fr[l4:l4 + ulen]) == 0xFFFF


FIELDS = [  # (offset from the cpn header, length, name)
    (0, 2, "magic"), (2, 1, "version"), (3, 1, "type"), (4, 2, "flags"), (6, 2, "service_id"),
    (8, 4, "tenant_id"), (12, 4, "session_key"), (16, 8, "request_id"), (24, 2, "node_id"),
    (26, 1, "hops"), (27, 1, "class"), (28, 4, "router_ts"), (32, 2, "queue_depth"),
    (34, 2, "inflight"), (36, 2, "capacity"), (38, 1, "util"), (39, 1, "status"),
    (40, 4, "worker_us"), (44, 4, "reserved"), (48, 8, "tag")]


def field_name(fr, off):
    if off < 6:
        return "Ethernet destination"
    if off < 12:
        return "Ethernet source"
    v = udp_view(fr)
    l3, _ = l3_offset(fr)
    if l3 is None or off < l3:
        return "Ethernet type / VLAN tag"
    if v is None:
        return f"byte {off - l3} of the L3 packet"
    l3, l4, pay, fam = v
    if off < l4:
        names4 = {0: "version/ihl", 1: "tos", 2: "tot_len", 3: "tot_len", 4: "id", 5: "id",
                  6: "frag_off", 7: "frag_off", 8: "ttl", 9: "protocol", 10: "IPv4 checksum",
                  11: "IPv4 checksum"}
        r = off - l3
        if fam == 4:
            return "IPv4 " + (names4.get(r) or ("saddr" if r < 16 else "daddr" if r < 20
                                                else "options"))
        return "IPv6 " + ("version/flow" if r < 4 else "payload_len" if r < 6 else
                          "nexthdr" if r == 6 else "hop_limit" if r == 7 else
                          "saddr" if r < 24 else "daddr")
    if off < pay:
        return "UDP " + ["sport", "sport", "dport", "dport", "len", "len", "checksum",
                         "checksum"][off - l4]
    for o, n, name in FIELDS:
        if o <= off - pay < o + n:
            return f"cpn {name}"
    return f"payload byte {off - pay - CPN_HDR_LEN}"


def hexdump(b, mark):
    lines = []
    for i in range(0, len(b), 16):
        row = " ".join(("[%02x]" if i + j == mark else " %02x ") % b[i + j]
                       for j in range(min(16, len(b) - i)))
        lines.append(f"    {i:04x}: {row}")
    return "\n".join(lines)


M64 = (1 << 64) - 1


def siphash24(k0, k1, words):
    """SipHash-2-4 of whole little-endian 64-bit words (include/cpn/siphash.h)."""
    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & M64

    v = [0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1,
         0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1]

    def rnd():
        v[0] = (v[0] + v[1]) & M64
        v[1] = rotl(v[1], 13) ^ v[0]
        v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64
        v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64
        v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64
        v[1] = rotl(v[1], 17) ^ v[2]
        v[2] = rotl(v[2], 32)

    for m in words:
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    b = (len(words) * 8) << 56
    v[3] ^= b
    rnd()
    rnd()
    v[0] ^= b
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def hop_tag_ok(fr, pay, key):
    """The steered request's hop tag (worker_us) is cpn_hop_tag() under key."""
    h = fr[pay:pay + CPN_HDR_LEN]
    w = [h[16:24], h[8:12] + h[6:8] + h[24:26], h[28:32] + h[44:48]]
    tag = siphash24(int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little"),
                    [int.from_bytes(x, "little") for x in w])
    return h[40:44] == (tag & 0xFFFFFFFF).to_bytes(4, "little")


def compare(exp, out, rows, ts_spread, hop_key=None):
    offsets = []
    for k in range(min(len(exp), len(out))):
        e, o, r = exp[k], out[k], rows[k] if k < len(rows) else None
        what = f"frame {k + 1} (input frame {r['in']}: {r['label']}, {r['verdict']})" if r \
            else f"frame {k + 1}"
        ignore = set()
        if r and r["mode"] == "l3":
            ignore |= set(range(6, 12))
            want = bytes.fromhex(r["dmac"].replace(":", ""))
            if o[:6] != want:
                print(f"not the same: {what}: destination MAC {o[:6].hex(':')}, "
                      f"the neighbour's is {want.hex(':')}")
                return 1
            v = udp_view(e)
            if v and len(e) >= v[2] + CPN_HDR_LEN and e[v[2] + 3] == T_REQUEST:
                l3, l4, pay, fam = v
                if len(o) == len(e):
                    if not udp_csum_ok(o):
                        print(f"not the same: {what}: the UDP checksum of the output is wrong")
                        return 1
                    et = struct.unpack("!I", e[pay + 28:pay + 32])[0]
                    ot = struct.unpack("!I", o[pay + 28:pay + 32])[0]
                    offsets.append(((ot - et) & 0xFFFFFFFF, k + 1))
                    ignore |= set(range(pay + 28, pay + 32)) | {l4 + 6, l4 + 7}
                    if hop_key is not None:
                        if not (hop_tag_ok(e, pay, hop_key) and hop_tag_ok(o, pay, hop_key)):
                            print(f"not the same: {what}: a hop tag does not verify")
                            return 1
                        ignore |= set(range(pay + 40, pay + 44))
        n = min(len(e), len(o))
        diff = next((i for i in range(n) if e[i] != o[i] and i not in ignore), None)
        if diff is None and len(e) != len(o):
            print(f"not the same: {what}: {len(o)} bytes out, {len(e)} expected")
            return 1
        if diff is not None:
            print(f"not the same: {what}: byte {diff} ({field_name(e, diff)}): "
                  f"out {o[diff]:#04x}, expected {e[diff]:#04x}")
            print("  expected:\n" + hexdump(e, diff))
            print("  out:\n" + hexdump(o, diff))
            return 1
    if len(exp) != len(out):
        k = min(len(exp), len(out))
        if len(out) < len(exp):
            r = rows[k] if k < len(rows) else None
            extra = f" (input frame {r['in']}: {r['label']})" if r else ""
            print(f"not the same: {len(out)} frames out, {len(exp)} expected: "
                  f"frame {k + 1}{extra} is missing")
        else:
            print(f"not the same: {len(out)} frames out, {len(exp)} expected: "
                  f"frame {k + 1} is extra:\n" + hexdump(out[k], -1))
        return 1
    if offsets:
        base = offsets[0][0]
        rel = [(((d - base + 2**31) & 0xFFFFFFFF) - 2**31, f) for d, f in offsets]
        lo, hi = min(rel), max(rel)
        if hi[0] - lo[0] > ts_spread:
            print(f"not the same: router_ts: the clocks' offset moves by {hi[0] - lo[0]} µs "
                  f"between frames {lo[1]} and {hi[1]} (allowed {ts_spread})")
            return 1
    print(f"same: {len(exp)} frames ({len(offsets)} with router_ts from the plane's own clock, "
          f"offset {offsets[0][0] if offsets else 0} µs)")
    return 0


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "--count":
            print(len(read_pcap(argv[2])))
            return 0
        spread = 5_000_000
        if "--ts-spread-us" in argv:
            i = argv.index("--ts-spread-us")
            spread = int(argv[i + 1])
            argv = argv[:i] + argv[i + 2:]
        hop_key = None
        if "--hop-key" in argv:
            i = argv.index("--hop-key")
            hop_key = bytes.fromhex(argv[i + 1])
            if len(hop_key) != 16:
                raise ValueError("--hop-key wants 32 hex digits")
            argv = argv[:i] + argv[i + 2:]
        if len(argv) != 4:
            print(__doc__, file=sys.stderr)
            return 2
        exp, out, rows = read_pcap(argv[1]), read_pcap(argv[2]), read_manifest(argv[3])
    except (OSError, ValueError) as e:
        print(f"pcap_cmp: {e}", file=sys.stderr)
        return 2
    if len(rows) != len(exp):
        print(f"pcap_cmp: {argv[3]} lists {len(rows)} outputs, {argv[1]} holds {len(exp)}",
              file=sys.stderr)
        return 2
    return compare(exp, out, rows, spread, hop_key)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
