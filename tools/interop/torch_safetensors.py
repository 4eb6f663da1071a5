#!/usr/bin/python3
"""Safetensors both ways between PyTorch and ResNetSharp, with no `safetensors` package on either side.

    /usr/bin/python3 tools/interop/torch_safetensors.py [--arch resnet18] [--resnet "dotnet src/ResNetSharp.Cli/bin/Release/net10.0/resnet.dll"]

1. PyTorch -> ResNetSharp: a torchvision model's state dict (seeded random weights, non-trivial BN statistics) is saved
   with tools/golden/torch_reference.write_safetensors; `resnet infer --arch` runs it as a bare state dict, and
   `resnet convert` turns it into a native file (ResNetSharp's own writer, metadata added).
2. ResNetSharp -> PyTorch: the native file ResNetSharp wrote is read here by hand and loaded with
   load_state_dict(strict=True) into a fresh torchvision model.
Both models' logits on one input are compared with torch's (criterion: max |diff| <= 1e-4 * max |torch|).
Build the CLI first: dotnet build src/ResNetSharp.Cli -c Release.
"""

import argparse
import json
import os
import shlex
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
sys.path.insert(0, HERE)
from torch_reference import write_safetensors  # noqa: E402
from export_torchvision import build  # noqa: E402

NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path):
    """Header length (u64 LE), JSON header, raw little-endian data; every entry checked against the file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        assert 0 <= b <= end <= len(body), name
        a = np.frombuffer(body[b:end], dtype=NP[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--resnet", default=f"dotnet {ROOT}/src/ResNetSharp.Cli/bin/Release/net10.0/resnet.dll")
    args = ap.parse_args()
    resnet = shlex.split(args.resnet)
    torch.set_num_threads(2)
    model = build(args.arch)
    x = torch.randn(2, 3, 224, 160, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x).numpy()
    scale = float(np.abs(ref).max())
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        sd = {k: (v.to(torch.int64).reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in model.state_dict().items()}
        torch_file = os.path.join(tmp, "torch.safetensors")
        write_safetensors(torch_file, sd, {})
        np.save(os.path.join(tmp, "x.npy"), x.numpy())

        # 1. PyTorch -> ResNetSharp
        subprocess.run(resnet + ["infer", "--model", torch_file, "--arch", args.arch, "--input", os.path.join(tmp, "x.npy"),
                                 "--output", os.path.join(tmp, "ours.npy")], check=True, stdout=subprocess.DEVNULL)
        d = float(np.abs(np.load(os.path.join(tmp, "ours.npy")) - ref).max())
        ok &= d <= 1e-4 * scale
        print(f"PyTorch state dict -> ResNetSharp ({args.arch}): max |diff| {d:.3e}, scale {scale:.3f}, ratio {d / scale:.2e}")

        # 2. ResNetSharp -> PyTorch
        native = os.path.join(tmp, "native.safetensors")
        subprocess.run(resnet + ["convert", "--model", torch_file, "--arch", args.arch, "--out", native], check=True, stdout=subprocess.DEVNULL)
        tensors, meta = read_safetensors(native)
        fresh = getattr(torchvision.models, args.arch)(num_classes=1000).eval()
        fresh.load_state_dict({k: (v.reshape(()) if k.endswith("num_batches_tracked") else v) for k, v in tensors.items()}, strict=True)
        with torch.no_grad():
            back = fresh(x).numpy()
        d2 = float(np.abs(back - ref).max())
        ok &= d2 <= 1e-4 * scale
        arch = json.loads(meta["resnetsharp"])["architecture"]
        print(f"ResNetSharp native file ({arch}, {len(tensors)} tensors) -> PyTorch load_state_dict(strict=True): "
              f"max |diff| {d2:.3e} (bit-identical weights give 0)")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
