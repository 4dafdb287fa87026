#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A cpn node in Python: each request is answered with its payload reversed,
a batch at a time (the model's place).

    PYTHONPATH=python worker.py --listen 10.0.0.1:7471 --router 10.0.0.254:7471 --node-id 1
"""
import argparse

import cpn

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--listen", required=True)
ap.add_argument("--router", action="append", required=True)
ap.add_argument("--node-id", type=int, required=True)
ap.add_argument("--metrics", default="", help="ADDR:PORT of /metrics")
a = ap.parse_args()
extra = {"metrics": a.metrics} if a.metrics else {}


def model(batch):
    return [p[::-1] for p in batch]  # a list of bytes in, a list of bytes out


w = cpn.Worker(listen=a.listen, routers=a.router, node_id=a.node_id, max_batch=16,
               max_delay_us=2000, capacity=1, kernel="reverse", **extra)
raise SystemExit(w.serve(model))
