#!/usr/bin/python3
"""Export torchvision ResNet-18/34/50/101/152 to ONNX with PyTorch, for the interop check (bench/interop.sh).

Run with Debian's PyTorch 1.13 (/usr/bin/python3, python3-torch and python3-torchvision); nothing else is needed.

    /usr/bin/python3 tools/interop/export_torchvision.py OUT_DIR [--arch resnet18 ...]

Per architecture, from one seeded model (torchvision's random initialisation, BN running statistics taken as the
cumulative mean/variance over three random training-mode batches, BN gamma and beta perturbed so no BN is an identity):
  <arch>_opset13.onnx    eval-mode graph, opset 13, input "input" (N,3,H,W) with N, H, W dynamic, output "logits"
  <arch>_opset9.onnx     the same at opset 9 (resnet18 and resnet50 only)
  <arch>.safetensors     the torchvision state dict
  <arch>.a.input.npy     2x3x224x192 (batch 2, non-square) and <arch>.a.torch.npy, torch's logits on it
  <arch>.b.input.npy     1x3x160x256 and <arch>.b.torch.npy
Models are large (resnet152: 240 MB) and are never committed.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
from torch_reference import torchvision_with_bn_statistics, write_safetensors  # noqa: E402

SEED = 20261129
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
INPUTS = {"a": (2, 3, 224, 192), "b": (1, 3, 160, 256)}


def build(arch: str) -> nn.Module:
    return torchvision_with_bn_statistics(arch, SEED)


def save_npy(path, a):
    with open(path + ".tmp", "wb") as f:
        np.save(f, np.ascontiguousarray(a, dtype="<f4"))
    os.replace(path + ".tmp", path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--arch", action="append", choices=ARCHS)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for arch in args.arch or ARCHS:
        model = build(arch)
        sd = {k: (v.to(torch.int64).reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in model.state_dict().items()}
        write_safetensors(os.path.join(args.out_dir, f"{arch}.safetensors"), sd,
                          {"source": f"torchvision {arch}, tools/interop/export_torchvision.py seed {SEED}"})
        for key, shape in INPUTS.items():
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(SEED + 7))
            with torch.no_grad():
                y = model(x)
            save_npy(os.path.join(args.out_dir, f"{arch}.{key}.input.npy"), x.numpy())
            save_npy(os.path.join(args.out_dir, f"{arch}.{key}.torch.npy"), y.numpy())
        for opset in (13, 9) if arch in ("resnet18", "resnet50") else (13,):
            path = os.path.join(args.out_dir, f"{arch}_opset{opset}.onnx")
            torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path + ".tmp", opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N"}}, do_constant_folding=True)
            os.replace(path + ".tmp", path)
            print(f"{arch} opset {opset}: {os.path.getsize(path) / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
