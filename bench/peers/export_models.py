#!/usr/bin/python3
"""Export the benchmark models for ResNetSharp and its peers: torchvision resnet18 and resnet50 (1000 classes).

Run with Debian's PyTorch 1.13 (/usr/bin/python3, packages python3-torch and python3-torchvision):

    /usr/bin/python3 bench/peers/export_models.py [OUT_DIR]        # default: bench/.models

For each architecture it writes, from one seeded model:
  <arch>.onnx          eval-mode graph for ONNX Runtime (opset 13, input "input" (N,3,224,224), output "logits"
                       (N,1000), dynamic batch axis). torch.onnx.export in 1.13 serialises the protobuf itself, so the
                       python `onnx` package is not needed.
  <arch>.safetensors   the state dict (every parameter and BN buffer by torchvision name, float32;
                       num_batches_tracked as I64), which ResNetSharp.IO.StateDict.Load reads.
  <arch>.json          how it was made: seed, versions, a reference output of torch on a fixed input.

The weights are torchvision's random initialisation under torch.manual_seed(SEED). The BN running statistics are made
non-trivial by running a few training-mode forwards on random images with momentum=None (cumulative average), so the
eval-mode network is well scaled at every depth; BN gamma/beta are then perturbed randomly so no BN is an identity.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

SEED = 20261129
ARCHS = ("resnet18", "resnet50")
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", ".models"))

# safetensors, by hand: the writer the golden data uses (atomic: temp file, then rename).
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "golden"))
from torch_reference import torchvision_with_bn_statistics, write_safetensors  # noqa: E402


def read_safetensors_names(path: str) -> dict:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    return header


# ----------------------------------------------------------------------------------------------------------------------


def build(arch: str) -> nn.Module:
    return torchvision_with_bn_statistics(arch, SEED)


def export(arch: str, out_dir: str) -> None:
    t0 = time.time()
    model = build(arch)
    sd = model.state_dict()
    tensors = {}
    for name, t in sd.items():
        if name.endswith(".num_batches_tracked"):
            tensors[name] = t.detach().to(torch.int64).reshape(())
        else:
            assert t.dtype == torch.float32, (name, t.dtype)
            tensors[name] = t
    meta = {"architecture": f"torchvision {arch}", "seed": SEED, "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "bn": "running stats = cumulative mean/var over 3 random train-mode batches of 4x3x224x224; "
                  "gamma *= 1+0.1*randn, beta += 0.1*randn"}
    st_path = os.path.join(out_dir, f"{arch}.safetensors")
    write_safetensors(st_path, tensors, meta)
    assert list(read_safetensors_names(st_path)) == list(tensors)

    onnx_path = os.path.join(out_dir, f"{arch}.onnx")
    tmp = onnx_path + ".tmp"
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), tmp, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, export_params=True)
    os.replace(tmp, onnx_path)

    # A reference output on a fixed input, for a quick look (the harness compares ours with ORT itself).
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    info = dict(meta, params=sum(p.numel() for p in model.parameters()), onnx=os.path.basename(onnx_path),
                safetensors=os.path.basename(st_path), opset=13, input="input (N,3,224,224) float32",
                output="logits (N,1000) float32",
                check_input="torch.randn(1,3,224,224, generator=manual_seed(1))",
                check_logits_first5=[float(v) for v in y[0, :5]], check_logits_absmax=float(y.abs().max()),
                check_logits_std=float(y.std()))
    with open(os.path.join(out_dir, f"{arch}.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(f"  {arch}: {info['params']:,} params, logits |max| {info['check_logits_absmax']:.4g} "
          f"std {info['check_logits_std']:.4g}; {os.path.getsize(onnx_path) / 1e6:.1f} MB onnx, "
          f"{os.path.getsize(st_path) / 1e6:.1f} MB safetensors ({time.time() - t0:.1f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--arch", action="append", choices=ARCHS, help="only these architectures (default: all)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}: writing to {args.out_dir}")
    for arch in args.arch or ARCHS:
        export(arch, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
