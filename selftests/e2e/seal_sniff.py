#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Capture every frame of the namespace it runs in (a packet socket on all
its interfaces, both directions) for a while, for selftests/e2e/test_sealed.sh.

  seal_sniff.py --marker TEXT --seconds S --out FILE [--ready FILE]
      Counts the frames, the cpn datagrams among them (UDP to or from ports
      7470 or 7471 whose payload starts with the cpn magic) and the frames
      in which TEXT appears anywhere; writes them to FILE as JSON. --ready is
      created once the socket is open.
"""
import argparse
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--marker", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready")
    a = ap.parse_args()
    marker = a.marker.encode()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    s.settimeout(0.05)
    if a.ready:
        open(a.ready, "w").close()
    frames = cpn = marked = 0
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        try:
            f = s.recv(65536)
        except socket.timeout:
            continue
        frames += 1
        if marker in f:
            marked += 1
        # Ethernet, IPv4, UDP: a cpn datagram?
        if len(f) >= 14 + 20 + 8 + 2 and f[12:14] == b"\x08\x00" and f[23] == 17:
            ihl = (f[14] & 15) * 4
            sport, dport = struct.unpack_from("!HH", f, 14 + ihl)
            pl = f[14 + ihl + 8:]
            if (sport in (7470, 7471) or dport in (7470, 7471)) and pl[:2] == b"\x43\x50":
                cpn += 1
    json.dump({"frames": frames, "cpn": cpn, "marked": marked}, open(a.out, "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
