#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Images to the ResNet-18 service through cpn, each answer checked against
the same model run here.

The model is torchvision's ResNet-18 with its random initialisation under
--seed, as resnet_worker.py builds it; the inputs are drawn under --seed + 1.
An answer is the model's 1000 logits for its image. It is checked against
this process's own run of the model on the same image: equal to float32
rounding (a batch of 16 and a batch of 1 sum in different orders, so the
last bits may differ: |diff| <= 1e-4 + 1e-4 |y|) and the same top class.

    resnet_client.py VIP:PORT [--requests N] [--size S] [--window W] [--json FILE]
"""
import argparse
import json
import sys
import time

import torch
import torchvision

import cpn

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("vip")
ap.add_argument("--service", type=int, default=1)
ap.add_argument("--tenant", type=int, default=42)
ap.add_argument("--requests", type=int, default=1000)
ap.add_argument("--size", type=int, default=224, help="image side, pixels")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--window", type=int, default=32, help="requests in flight at most")
ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
ap.add_argument("--no-check", action="store_true", help="do not run the model here")
ap.add_argument("--json", help="write the figures to this file")
a = ap.parse_args()

torch.manual_seed(a.seed)
model = torchvision.models.resnet18(weights=None).eval()
x = torch.randn(a.requests, 3, a.size, a.size, generator=torch.Generator().manual_seed(a.seed + 1))
payloads = [x[i].numpy().tobytes() for i in range(a.requests)]

with cpn.Client(a.vip, service=a.service, tenant=a.tenant) as c:
    t0 = time.monotonic()
    done = c.call_many(payloads, timeout=a.timeout, window=a.window)
    wall = time.monotonic() - t0

errors = [d for d in done if d.error is not None]
lat = sorted(d.latency for d in done if d.error is None)
equal, worst = 0, 0.0
if not a.no_check:
    with torch.no_grad():
        ref = torch.cat([model(x[i:i + 16]) for i in range(0, a.requests, 16)])
    for i, d in enumerate(done):
        if d.error is not None or len(d.reply) != 4000:
            continue
        y = torch.frombuffer(bytearray(d.reply), dtype=torch.float32)
        worst = max(worst, (y - ref[i]).abs().max().item())
        if torch.allclose(y, ref[i], rtol=1e-4, atol=1e-4) and y.argmax() == ref[i].argmax():
            equal += 1


def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else 0.0


fig = {"requests": a.requests, "answered": len(lat), "errors": len(errors),
       "equal": None if a.no_check else equal, "max_abs_diff": worst, "size": a.size,
       "window": a.window, "seconds": wall, "req_per_s": len(lat) / wall,
       "p50_ms": q(0.5), "p99_ms": q(0.99), "nodes": sorted({d.node for d in done if d.node})}
check = "not checked" if a.no_check else \
    "%d equal to the local model (max |diff| %.2g)" % (equal, worst)
print("%d requests, %d answered, %d errors, %s; %.1f req/s, p50 %.1f ms, p99 %.1f ms" %
      (a.requests, len(lat), len(errors), check, fig["req_per_s"], fig["p50_ms"], fig["p99_ms"]))
for d in errors[:3]:
    print("error: %s" % d.error, file=sys.stderr)
if a.json:
    with open(a.json, "w") as f:
        json.dump(fig, f)
sys.exit(0 if not errors and (a.no_check or equal == a.requests) else 1)
