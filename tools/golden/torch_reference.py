"""PyTorch-side pieces shared by tools/golden/make_golden.py and the bench peers (bench/peers/*.py).

Importing this module changes no torch setting (thread count, seeds): each script sets its own.
"""

import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------------------
# safetensors, by hand (no `safetensors` package needed)
# ----------------------------------------------------------------------------------------------------------------------

DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64", np.dtype("<u4"): "U32"}
NP_DTYPES = {v: k for k, v in DTYPES.items()}


def to_numpy(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        if v.dtype == torch.float64:
            raise TypeError("float64 torch tensors are not stored; convert explicitly (a float64 numpy array is stored as F64)")
        v = v.detach().cpu().contiguous().numpy()
    a = np.ascontiguousarray(v)
    return a.astype(a.dtype.newbyteorder("<"), copy=False)


def write_safetensors(path: str, tensors: dict, metadata: dict) -> None:
    """Header length (u64 LE), JSON header (space-padded to 8 bytes), then the raw little-endian data."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, value in tensors.items():
        a = to_numpy(value)
        if a.dtype not in DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        raw = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"  # written whole, then renamed: a reader never sees half a file
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------------------
# CIFAR ResNet-20/32/... (He et al. 2015, option A shortcuts), with ResNetSharp's / torchvision's module names
# ----------------------------------------------------------------------------------------------------------------------


def shortcut_a(x: torch.Tensor, planes: int) -> torch.Tensor:
    """CIFAR option-A shortcut: subsample by 2 and zero-pad the channels (planes//4 on each side)."""
    return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.planes = planes
        self.option_a = stride != 1 or in_planes != planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = shortcut_a(x, self.planes) if self.option_a else x
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int = 3, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for idx, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{idx}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.fc(out)


@torch.no_grad()
def torchvision_with_bn_statistics(arch: str, seed: int):
    """A torchvision ResNet with random weights and non-trivial BN statistics: running statistics accumulated from the
    model's own activations over three random batches (cumulative average), then BN weights and biases perturbed.
    Shared by bench/peers/export_models.py and tools/interop/export_torchvision.py."""
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(num_classes=1000)
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in range(3):
        model(torch.randn(4, 3, 224, 224, generator=g))
    for m in bns:
        m.momentum = 0.1
        m.weight.mul_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
        m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()
