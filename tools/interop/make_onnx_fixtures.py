#!/usr/bin/python3
"""Small PyTorch-exported ONNX fixtures for the CI tests (tests/golden/onnx/), with torch's own outputs.

Run with Debian's PyTorch 1.13 (/usr/bin/python3, python3-torch): no other package is needed.

    /usr/bin/python3 tools/interop/make_onnx_fixtures.py [OUT_DIR]     # default: tests/golden/onnx

Each fixture is a CIFAR ResNet (He et al. 2015, option-A shortcuts; tools/golden/torch_reference.py) with seeded
random weights and non-trivial BN statistics, exported in eval mode with a dynamic batch axis:

  resnet20_opset13.onnx   resnet20 (3 blocks per stage), opset 13: the shortcut's x[:, :, ::2, ::2] becomes Slice with
                          steps, F.pad a Pad whose pads are an input.
  resnet8_opset9.onnx     1 block per stage, opset 9: the subsample is written F.avg_pool2d(x, 1, 2) (identical values;
                          opset 9 has no strided Slice), the pad a Pad with a `pads` attribute.
  resnet8_opset7.onnx     the same at opset 7.

For each, <name>.input.npy (2x3x32x40: batch 2, non-square) and <name>.torch.npy (torch's logits on it).
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
import torch_reference as ref  # noqa: E402

DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "golden", "onnx"))


def shortcut_avgpool(x, planes):
    """Option A with the subsample as a 1x1 stride-2 average pool: the same values as x[:, :, ::2, ::2]."""
    return F.pad(F.avg_pool2d(x, 1, 2), (0, 0, 0, 0, planes // 4, planes // 4))


@torch.no_grad()
def build(blocks: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = ref.CifarResNet(blocks_per_stage=blocks)
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for _ in range(3):
        model(torch.randn(8, 3, 32, 32, generator=g))
    for m in bns:
        m.momentum = 0.1
        m.weight.mul_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
        m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def write_npy(path, a):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(a, dtype="<f4"))
    os.replace(tmp, path)


def export(name: str, blocks: int, opset: int, avgpool: bool, out_dir: str, seed: int) -> None:
    model = build(blocks, seed)
    original = ref.shortcut_a
    try:
        if avgpool:
            ref.shortcut_a = shortcut_avgpool  # BasicBlock.forward looks it up at call time
        x = torch.randn(2, 3, 32, 40, generator=torch.Generator().manual_seed(seed + 2))
        with torch.no_grad():
            y = model(x)
        path = os.path.join(out_dir, f"{name}.onnx")
        torch.onnx.export(model, torch.zeros(1, 3, 32, 32), path + ".tmp", opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N"}},
                          do_constant_folding=True)
        os.replace(path + ".tmp", path)
    finally:
        ref.shortcut_a = original
    write_npy(os.path.join(out_dir, f"{name}.input.npy"), x.numpy())
    write_npy(os.path.join(out_dir, f"{name}.torch.npy"), y.numpy())
    print(f"{name}: {os.path.getsize(path) / 1e3:.0f} kB, logits |max| {float(y.abs().max()):.4g}")


def main() -> int:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    export("resnet20_opset13", 3, 13, False, out_dir, 2026)
    export("resnet8_opset9", 1, 9, True, out_dir, 2027)
    export("resnet8_opset7", 1, 7, True, out_dir, 2028)
    return 0


if __name__ == "__main__":
    sys.exit(main())
