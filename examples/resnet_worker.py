#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""ResNet-18 served as a cpn node.

Each request is one image: 3 x SIZE x SIZE float32, little-endian, C order;
each reply the model's 1000 logits, float32. Requests are batched by the
worker library (up to --max-batch, waiting at most --max-delay-us) and run
through the model as one tensor. The weights are torchvision's random
initialisation under --seed, so that a client can build the same model.

    resnet_worker.py --listen 10.0.0.1:7470 --router 10.0.0.254:7471 --node-id 1
"""
import argparse

import torch
import torchvision

import cpn

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--listen", required=True)
ap.add_argument("--router", action="append", required=True)
ap.add_argument("--node-id", type=int, required=True)
ap.add_argument("--max-batch", type=int, default=16)
ap.add_argument("--max-delay-us", type=int, default=5000)
ap.add_argument("--size", type=int, default=224, help="image side, pixels")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
ap.add_argument("--metrics", help="ADDR:PORT of Prometheus /metrics")
a = ap.parse_args()

if a.threads:
    torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
model = torchvision.models.resnet18(weights=None).eval()
shape = (3, a.size, a.size)
nbytes = 4 * shape[0] * shape[1] * shape[2]


def infer(batch):
    # A payload of the wrong size is answered with status 1, bad request.
    good = [i for i, p in enumerate(batch) if len(p) == nbytes]
    out = [(cpn.ST_BAD_REQUEST, b"")] * len(batch)
    if good:
        x = torch.stack([torch.frombuffer(bytearray(batch[i]), dtype=torch.float32).view(shape)
                         for i in good])
        with torch.no_grad():
            y = model(x)
        for j, i in enumerate(good):
            out[i] = y[j].numpy().tobytes()
    return out


# Every queued image is a large message the node holds: budgets for a
# window of images per client, and more across clients.
opts = {"max_message": "2M", "frag_client_budget": "64M", "frag_budget": "256M"}
if a.metrics:
    opts["metrics"] = a.metrics
cpn.Worker(listen=a.listen, routers=a.router, node_id=a.node_id, max_batch=a.max_batch,
           max_delay_us=a.max_delay_us, capacity=1, kernel="resnet18", **opts).serve(infer)
