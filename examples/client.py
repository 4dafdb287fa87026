#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One request to a cpn service, its reply printed: client.py VIP:PORT TEXT [KEY]."""
import sys

import cpn

if len(sys.argv) not in (3, 4):
    sys.exit("usage: client.py VIP:PORT TEXT [KEY]")
key = sys.argv[3] if len(sys.argv) == 4 else None
try:
    with cpn.Client(sys.argv[1], service=1, tenant=42, key=key) as c:
        print(c.call(sys.argv[2].encode(), timeout=1.0).decode())
except cpn.Busy as e:
    sys.exit("client.py: busy, reason %d" % e.remote)
except cpn.Error as e:
    sys.exit("client.py: %s" % e)
