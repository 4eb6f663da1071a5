#!/usr/bin/python3
"""Time PyTorch 1.13 (Debian's python3-torch) as a peer of ResNetSharp: training steps and, optionally, inference.

Run with /usr/bin/python3 (the python3 first on PATH may be another interpreter without torch).

Workloads (the same ones the C# harness bench/ResNetSharp.Bench runs for our engine):
  train-resnet20   CIFAR ResNet-20 (option A shortcuts, 16/32/64 channels), 1 input channel, 10 classes,
                   input 1x28x28, batch 128
  train-resnet18   torchvision resnet18, 10 classes, input 3x224x224, batch 16
  infer-resnet50   torchvision resnet50, 1000 classes, eval mode, torch.no_grad, 3x224x224 (batch from --batch)
  infer-resnet18   the same for resnet18
A training step is: opt.zero_grad(); loss = cross_entropy(model(x), t); loss.backward(); opt.step(), with BatchNorm in
training mode and torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=1e-4), on one fixed random batch.

Standalone, prints one JSON object:

    /usr/bin/python3 bench/peers/torch_train.py --work train-resnet20 --threads 2 --warmup 3 --steps 10

As a worker for the harness (--serve): builds the model, prints a JSON "ready" line, then for each line "run K" on
stdin runs K steps and prints a JSON line with the K step times; "quit" or end of input ends it. Warm-up is run by the
harness with a first "run" whose times it discards.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

# CIFAR ResNet-20 (option A shortcuts) is the one the golden data uses; here with 1 input channel
# (269,434 parameters for 28x28 grey images).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "golden"))
from torch_reference import CifarResNet  # noqa: E402

# ----------------------------------------------------------------------------------------------------------------------

WORKS = {
    # name: (kind, default batch, input (C,H,W), description)
    "train-resnet20": ("train", 128, (1, 28, 28), "CIFAR resnet20 (option A, 1 input channel, 10 classes)"),
    "train-resnet18": ("train", 16, (3, 224, 224), "torchvision resnet18 (10 classes)"),
    "infer-resnet50": ("infer", 1, (3, 224, 224), "torchvision resnet50 (1000 classes), eval, no_grad"),
    "infer-resnet18": ("infer", 1, (3, 224, 224), "torchvision resnet18 (1000 classes), eval, no_grad"),
}


class Work:
    def __init__(self, name: str, batch: int, seed: int = 0):
        kind, default_batch, chw, self.description = WORKS[name]
        self.name, self.kind, self.batch = name, kind, batch or default_batch
        torch.manual_seed(seed)
        if name == "train-resnet20":
            self.model = CifarResNet(3, 10, in_channels=1)
        elif name == "train-resnet18":
            self.model = torchvision.models.resnet18(num_classes=10)
        else:
            self.model = getattr(torchvision.models, name.split("-", 1)[1])(num_classes=1000)
        self.params = sum(p.numel() for p in self.model.parameters())
        g = torch.Generator().manual_seed(seed + 1)
        self.x = torch.randn(self.batch, *chw, generator=g)
        if kind == "train":
            self.model.train()
            self.t = torch.randint(0, 10, (self.batch,), generator=g)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        else:
            self.model.eval()

    def step(self) -> float:
        """One step; returns its wall time in ms."""
        t0 = time.perf_counter()
        if self.kind == "train":
            self.opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(self.model(self.x), self.t)
            loss.backward()
            self.opt.step()
            loss.item()
        else:
            with torch.no_grad():
                self.model(self.x)
        return (time.perf_counter() - t0) * 1e3

    def header(self, threads: int) -> dict:
        return {"work": self.name, "description": self.description, "batch": self.batch,
                "input": list(self.x.shape[1:]), "params": self.params, "threads": threads,
                "interop_threads": torch.get_num_interop_threads(), "torch": torch.__version__,
                "torchvision": torchvision.__version__}


def summary(times_ms, batch) -> dict:
    med = statistics.median(times_ms)
    return {"median_ms": med, "img_per_s": batch * 1e3 / med, "min_ms": min(times_ms), "max_ms": max(times_ms),
            "steps": len(times_ms), "times_ms": [round(t, 3) for t in times_ms]}


def serve(work: Work, threads: int) -> int:
    print(json.dumps(dict(work.header(threads), ready=True)), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] != "run" or len(parts) != 2:
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        k = int(parts[1])
        times = [work.step() for _ in range(k)]
        print(json.dumps({"times_ms": times}), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="Time PyTorch training steps / inference for the ResNetSharp benchmark.")
    ap.add_argument("--work", choices=sorted(WORKS), default="train-resnet20")
    ap.add_argument("--batch", type=int, default=0, help="batch size (default: the workload's own: 128, 16, 1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--serve", action="store_true", help="worker mode for the harness (see the module docstring)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    work = Work(args.work, args.batch)
    if args.serve:
        return serve(work, args.threads)
    for _ in range(args.warmup):
        work.step()
    times = [work.step() for _ in range(args.steps)]
    print(json.dumps(dict(work.header(args.threads), warmup=args.warmup, **summary(times, work.batch))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
