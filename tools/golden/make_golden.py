#!/usr/bin/python3
"""Write the PyTorch reference data ("golden fixtures") for the ResNetSharp tests.

Run with Debian's PyTorch (see README.md in this folder):

    /usr/bin/python3 tools/golden/make_golden.py

Every fixture is a small .safetensors file in tests/golden/ (relative to this script: ../../tests/golden).
The files are written and read back by hand (struct + json), so no `safetensors` package is needed.

Two kinds of fixtures:
  * layer fixtures store their inputs (from a seeded torch.Generator) and PyTorch's outputs and gradients;
    every backward result is the gradient of sum(y * dy) for the stored upstream gradient `dy`.
  * model fixtures generate weights, BN statistics and inputs with the deterministic generator `det`
    described in README.md (implemented identically in C#), and store only inputs and results.

Everything is float32 and single-threaded, so the output is reproducible run to run.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from torch_reference import NP_DTYPES, CifarResNet, shortcut_a, to_numpy, write_safetensors

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "golden"))
TORCH_VERSION = torch.__version__
TORCHVISION_VERSION = torchvision.__version__

# ----------------------------------------------------------------------------------------------------------------------
# Deterministic value generator (README.md, "Deterministic values"). uint32 arithmetic is done in numpy uint64 and
# masked back to 32 bits after every multiply (operands are < 2^32, so the products fit in 64 bits).
# ----------------------------------------------------------------------------------------------------------------------

MASK32 = 0xFFFFFFFF


def fnv1a32(name: str) -> int:
    """FNV-1a (32 bit) over the UTF-8 bytes of `name`."""
    h = 2166136261
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 16777619) & MASK32
    return h


def hash_u32(seed: int, i: np.ndarray) -> np.ndarray:
    """hash(seed, i) for a vector of indices i (uint64 array holding uint32 values)."""
    u = np.uint64
    m = u(MASK32)
    h = (i * u(0x9E3779B1) + u((seed * 0x85EBCA77) & MASK32)) & m
    h ^= h >> u(15)
    h = (h * u(0x2C1B3C6D)) & m
    h ^= h >> u(12)
    h = (h * u(0x297A2D39)) & m
    h ^= h >> u(15)
    return h


def det(name: str, n: int) -> np.ndarray:
    """det(name, n): n float32 values in [-1, 1), exactly representable."""
    assert n < 2**32
    h = hash_u32(fnv1a32(name), np.arange(n, dtype=np.uint64))
    # (h >> 8) < 2^24, so k / 2^24 * 2 - 1 is exact in float64 and in float32.
    return ((h >> np.uint64(8)).astype(np.float64) / 16777216.0 * 2.0 - 1.0).astype(np.float32)


def det_scalar_reference(name: str, i: int) -> float:
    """Plain-Python version of det(name, n)[i], used to cross-check the vectorised one."""
    h = (i * 0x9E3779B1 + fnv1a32(name) * 0x85EBCA77) & MASK32
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & MASK32
    h ^= h >> 12
    h = (h * 0x297A2D39) & MASK32
    h ^= h >> 15
    return float(np.float32((h >> 8) / 2**24 * 2 - 1))


def det_tensor(name: str, shape) -> torch.Tensor:
    n = int(np.prod(shape))
    return torch.from_numpy(det(name, n).reshape(shape).copy())


def det_init_value(name: str, shape) -> np.ndarray:
    """The value a parameter/buffer `name` of `shape` gets under the README rules (float32 arithmetic)."""
    n = int(np.prod(shape))
    d = det(name, n)  # float32
    f32 = np.float32
    if name.endswith(".weight") and len(shape) == 4:  # conv (OC, IC, KH, KW)
        fan_in = shape[1] * shape[2] * shape[3]
        v = d * f32(math.sqrt(6.0 / fan_in))
    elif name.endswith(".weight") and len(shape) == 2:  # linear (OUT, IN)
        v = d * f32(math.sqrt(3.0 / shape[1]))
    elif name.endswith(".weight") and len(shape) == 1:  # BN gamma
        v = f32(1.0) + d * f32(0.25)
    elif name == "fc.bias":
        v = d * f32(0.1)
    elif name.endswith(".bias") and len(shape) == 1:  # BN beta
        v = d * f32(0.1)
    elif name.endswith(".running_mean"):
        v = d * f32(0.1)
    elif name.endswith(".running_var"):
        v = f32(1.0) + d * f32(0.5)
    else:
        raise ValueError(f"no deterministic rule for {name} {tuple(shape)}")
    assert v.dtype == np.float32
    return v.reshape(shape)


@torch.no_grad()
def init_deterministic(model: nn.Module) -> nn.Module:
    """Set every parameter and BN buffer of `model` from the README rules, by state_dict name and shape."""
    for name, t in model.state_dict().items():
        if name.endswith(".num_batches_tracked"):
            continue  # left as PyTorch has it
        t.copy_(torch.from_numpy(det_init_value(name, tuple(t.shape))))
    return model


# ----------------------------------------------------------------------------------------------------------------------
# safetensors, by hand
# ----------------------------------------------------------------------------------------------------------------------

def read_safetensors(path: str):
    """Returns (tensors: dict name -> numpy array in file order, metadata: dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors, expected_start = {}, 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        assert begin == expected_start, f"{path}:{name}: offsets not contiguous"
        dt = NP_DTYPES[info["dtype"]]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert end - begin == count * dt.itemsize, f"{path}:{name}: size mismatch"
        tensors[name] = np.frombuffer(body[begin:end], dtype=dt).reshape(info["shape"])
        expected_start = end
    assert expected_start == len(body), f"{path}: trailing bytes"
    return tensors, metadata


WRITTEN = []  # (file name, tensors) for the round-trip check and the summary


def save(filename: str, tensors: dict, description: str, **hyper) -> None:
    meta = {"description": description, "torch_version": TORCH_VERSION}
    meta.update({k: str(v) for k, v in hyper.items()})
    path = os.path.join(OUT_DIR, filename)
    write_safetensors(path, tensors, meta)
    WRITTEN.append((filename, {k: to_numpy(v) for k, v in tensors.items()}, meta))


def verify_round_trip() -> None:
    for filename, tensors, meta in WRITTEN:
        back, back_meta = read_safetensors(os.path.join(OUT_DIR, filename))
        assert list(back) == list(tensors), f"{filename}: names differ"
        assert back_meta == meta, f"{filename}: metadata differs"
        for name, a in tensors.items():
            b = back[name]
            assert a.dtype == b.dtype and a.shape == b.shape, f"{filename}:{name}: dtype/shape"
            assert a.tobytes() == b.tobytes(), f"{filename}:{name}: data differs"
            if a.dtype.kind == "f":
                assert np.isfinite(a).all(), f"{filename}:{name}: non-finite values"


# ----------------------------------------------------------------------------------------------------------------------
# Layer fixtures
# ----------------------------------------------------------------------------------------------------------------------


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(g, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def backward_of(y: torch.Tensor, dy: torch.Tensor) -> None:
    (y * dy).sum().backward()


def conv_fixture(filename, seed, x_shape, w_shape, stride, padding, bias):
    g = gen(seed)
    x = leaf(randn(g, *x_shape))
    w = leaf(randn(g, *w_shape) * math.sqrt(2.0 / (w_shape[1] * w_shape[2] * w_shape[3])))
    b = leaf(randn(g, w_shape[0]) * 0.1) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    t = {"x": x, "w": w}
    if bias:
        t["b"] = b
    t.update({"dy": dy, "y": y, "dx": x.grad, "dw": w.grad})
    if bias:
        t["db"] = b.grad
    save(filename, t, f"Conv2d k{w_shape[2]} stride {stride} padding {padding}{' with bias' if bias else ' no bias'}; "
                      "grads of sum(y*dy)",
         kernel=w_shape[2], stride=stride, padding=padding, bias=bias, dilation=1, groups=1)


def make_conv_fixtures():
    conv_fixture("conv_k3s2p1_bias.safetensors", 101, (2, 3, 7, 6), (4, 3, 3, 3), 2, 1, True)
    conv_fixture("conv_k1s1p0.safetensors", 102, (2, 5, 4, 5), (6, 5, 1, 1), 1, 0, False)
    conv_fixture("conv_k7s2p3.safetensors", 103, (1, 2, 11, 9), (3, 2, 7, 7), 2, 3, False)
    conv_fixture("conv_k3s1p1.safetensors", 104, (2, 4, 5, 5), (4, 4, 3, 3), 1, 1, False)
    conv_fixture("conv_k1s2p0.safetensors", 105, (2, 4, 7, 7), (8, 4, 1, 1), 2, 0, False)


def make_bn_fixtures():
    eps, momentum = 1e-5, 0.1

    # Training mode: normalise with the biased batch variance, update running stats with the unbiased one.
    g = gen(201)
    x = leaf(randn(g, 4, 3, 5, 5) * 2 + 0.5)
    gamma = leaf(1 + 0.3 * randn(g, 3))
    beta = leaf(0.2 * randn(g, 3))
    rm_in = 0.1 * randn(g, 3)
    rv_in = 1 + 0.5 * torch.rand(3, generator=g)
    rm, rv = rm_in.clone(), rv_in.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=momentum, eps=eps)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("bn_train.safetensors",
         {"x": x, "gamma": gamma, "beta": beta, "running_mean_in": rm_in, "running_var_in": rv_in, "dy": dy,
          "y": y, "dx": x.grad, "dgamma": gamma.grad, "dbeta": beta.grad,
          "running_mean_out": rm, "running_var_out": rv},
         "BatchNorm2d(3) training mode, one forward; y uses biased batch variance, running_var update uses unbiased "
         "(N*H*W/(N*H*W-1)) variance: r = (1-momentum)*r + momentum*batch_stat",
         eps=eps, momentum=momentum, training=True, affine=True)

    # Eval mode: normalise with the running statistics (which are constants, no gradient).
    g = gen(202)
    x = leaf(randn(g, 2, 3, 4, 4))
    gamma = leaf(1 + 0.3 * randn(g, 3))
    beta = leaf(0.2 * randn(g, 3))
    rm = 0.3 * randn(g, 3)
    rv = 0.5 + 1.5 * torch.rand(3, generator=g)
    y = F.batch_norm(x, rm.clone(), rv.clone(), gamma, beta, training=False, momentum=momentum, eps=eps)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("bn_eval.safetensors",
         {"x": x, "gamma": gamma, "beta": beta, "running_mean": rm, "running_var": rv, "dy": dy,
          "y": y, "dx": x.grad, "dgamma": gamma.grad, "dbeta": beta.grad},
         "BatchNorm2d(3) eval mode (running statistics); grads of sum(y*dy)",
         eps=eps, momentum=momentum, training=False, affine=True)


def make_relu_fixture():
    g = gen(301)
    x = randn(g, 2, 3, 4, 4)
    flat = x.view(-1)
    flat[[0, 5, 17, 40, 63, 95]] = 0.0  # exact zeros: PyTorch's ReLU gradient at 0 is 0
    x = leaf(x)
    y = F.relu(x)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("relu.safetensors", {"x": x, "dy": dy, "y": y, "dx": x.grad},
         "ReLU; x has exact zeros, where dx is 0 (grad passes only where x > 0)")


def maxpool_reference_dx(x: np.ndarray, dy: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Independent check of PyTorch's tie-breaking: first maximum in row-major window order, padding never wins."""
    n, c, h, w = x.shape
    oh, ow = dy.shape[2], dy.shape[3]
    dx = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    best, at = -np.inf, None
                    for di in range(k):
                        for dj in range(k):
                            r, q = i * s - p + di, j * s - p + dj
                            if 0 <= r < h and 0 <= q < w and x[b, ch, r, q] > best:
                                best, at = x[b, ch, r, q], (r, q)
                    dx[b, ch, at[0], at[1]] += dy[b, ch, i, j]
    return dx


def maxpool_fixture(filename, seed, shape):
    g = gen(seed)
    x = leaf(torch.round(randn(g, *shape) * 2) / 2)  # multiples of 0.5: many ties inside windows
    y = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    ref = maxpool_reference_dx(x.detach().numpy(), dy.numpy(), 3, 2, 1)
    # The overlapping windows accumulate in a different order in the reference, so compare with a tolerance.
    assert np.allclose(ref, x.grad.numpy(), rtol=0, atol=1e-6), "max-pool tie-breaking is not first-maximum"
    save(filename, {"x": x, "dy": dy, "y": y, "dx": x.grad},
         "MaxPool2d(3, stride 2, padding 1); x quantised to multiples of 0.5 so windows have ties; "
         "gradient goes to the FIRST maximum of each window (row-major), padding is -inf; overlapping windows add",
         kernel=3, stride=2, padding=1, dilation=1, ceil_mode=False, tie_break="first max in row-major window order")


def make_pool_fixtures():
    maxpool_fixture("maxpool_k3s2p1.safetensors", 401, (2, 3, 9, 8))
    maxpool_fixture("maxpool_k3s2p1_even.safetensors", 402, (1, 2, 8, 8))

    g = gen(403)
    x = leaf(randn(g, 2, 5, 3, 4))
    y = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("avgpool.safetensors", {"x": x, "dy": dy, "y": y, "dx": x.grad},
         "AdaptiveAvgPool2d(1) then flatten(1): (N,C,H,W) -> (N,C)", output_size=1)


def make_linear_fixture():
    g = gen(501)
    x = leaf(randn(g, 3, 5))
    w = leaf(randn(g, 4, 5) * math.sqrt(1.0 / 5))
    b = leaf(randn(g, 4) * 0.1)
    y = F.linear(x, w, b)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("linear.safetensors", {"x": x, "w": w, "b": b, "dy": dy, "y": y, "dx": x.grad, "dw": w.grad, "db": b.grad},
         "Linear: y = x @ w^T + b, w is (out, in)", in_features=5, out_features=4)


def make_add_fixture():
    g = gen(601)
    a = randn(g, 2, 3, 4, 4)
    b = randn(g, 2, 3, 4, 4)
    b.view(-1)[[1, 7, 30, 77]] = -a.view(-1)[[1, 7, 30, 77]]  # a + b exactly 0 at a few places: grad 0 there
    a, b = leaf(a), leaf(b)
    y = F.relu(a + b)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("add.safetensors", {"a": a, "b": b, "dy": dy, "y": y, "da": a.grad, "db": b.grad},
         "Residual add followed by ReLU: y = relu(a + b); da = db = dy where a+b > 0 else 0 "
         "(a+b is exactly 0 at a few positions)")


def make_cross_entropy_fixtures():
    g = gen(701)
    logits = randn(g, 6, 5) * 2
    logits[2] = torch.tensor([30.0, -30.0, 15.0, -7.0, 29.5])  # large values: needs a stable log-softmax
    logits[4] = torch.tensor([-30.0, 30.0, -29.0, 0.0, 30.0])  # tie at the max
    targets = torch.tensor([0, 3, 1, 4, 1, 2], dtype=torch.int64)  # row 2 targets its -30 logit: loss ~60
    for filename, ls in (("cross_entropy.safetensors", 0.0), ("cross_entropy_ls.safetensors", 0.1)):
        z = leaf(logits)
        loss = F.cross_entropy(z, targets, reduction="mean", label_smoothing=ls)
        loss.backward()
        save(filename, {"logits": z, "targets": targets, "loss": loss.reshape(1), "dlogits": z.grad},
             "F.cross_entropy(logits, targets), mean over the batch; dlogits = d loss / d logits. "
             "With label smoothing s: loss_i = (1-s)*(-logp[t_i]) + s * mean_c(-logp[c])",
             reduction="mean", label_smoothing=ls, num_classes=5)


def make_shortcut_fixture():
    g = gen(801)
    x = leaf(randn(g, 2, 4, 6, 6))
    y = shortcut_a(x, 8)
    dy = randn(g, *y.shape)
    backward_of(y, dy)
    save("shortcut_a.safetensors", {"x": x, "dy": dy, "y": y, "dx": x.grad},
         "Option-A shortcut: y = F.pad(x[:, :, ::2, ::2], (0,0,0,0, 2,2)): 4 -> 8 channels (2 zero channels each "
         "side), even rows/cols kept; dx is dy's middle channels scattered to even positions, 0 elsewhere",
         in_channels=4, out_channels=8, channel_pad_each_side=2, spatial_stride=2)


# ----------------------------------------------------------------------------------------------------------------------
# CIFAR ResNet-20 (He et al. 2015, option A shortcuts)
# ----------------------------------------------------------------------------------------------------------------------


RESNET20_PARAMS = 269722


def resnet20_deterministic() -> CifarResNet:
    torch.manual_seed(0)  # irrelevant (everything is overwritten) but keeps construction reproducible
    model = CifarResNet(3, 10)
    n = sum(p.numel() for p in model.parameters())
    assert n == RESNET20_PARAMS, n
    return init_deterministic(model)


DET_RULES = ("conv w: det*f32(sqrt(6/(IC*KH*KW))); linear w: det*f32(sqrt(3/IN)); BN gamma: 1+det*0.25; "
             "BN beta, fc.bias: det*0.1; running_mean: det*0.1; running_var: 1+det*0.5 (det by state_dict name)")


def cifar_batch(name: str, k_shift: int, n: int = 8):
    x = det_tensor(name, (n, 3, 32, 32))
    t = torch.tensor([(i + k_shift) % 10 for i in range(n)], dtype=torch.int64)
    return x, t


def bn_names(model: nn.Module):
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def make_resnet20_fixtures():
    meta = dict(architecture="CIFAR ResNet-20, option A shortcuts, 16/32/64 channels", params=RESNET20_PARAMS,
                init=DET_RULES, bn_eps=1e-5, bn_momentum=0.1)

    # a) one training-mode forward/backward
    model = resnet20_deterministic().train()
    x, targets = cifar_batch("input", 0)
    logits = model(x)
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    t = {"x": x, "targets": targets, "logits": logits, "loss": loss.reshape(1)}
    for name, p in model.named_parameters():
        t[f"grad.{name}"] = p.grad
    for name in bn_names(model):
        m = model.get_submodule(name)
        t[f"after.{name}.running_mean"] = m.running_mean
        t[f"after.{name}.running_var"] = m.running_var
    save("resnet20_train.safetensors", t,
         "ResNet-20 train mode: x=det('input') (8,3,32,32), targets i%10; loss = mean cross-entropy; "
         "grad.<param> after loss.backward(); after.<bn>.running_* after the forward", **meta)

    # b) eval mode
    model = resnet20_deterministic().eval()
    with torch.no_grad():
        logits = model(x)
    save("resnet20_eval.safetensors", {"x": x, "logits": logits},
         "ResNet-20 eval mode (running statistics), x=det('input') (8,3,32,32)", **meta)

    # c) three SGD steps. The reference trajectory is computed in float64: on this network at initialisation
    # some gradients are ill-conditioned (float32 and float64 gradients of layer3.2.conv1.weight differ by
    # ~4% of their scale, in PyTorch as in any float32 engine), so two correct float32 implementations drift
    # apart by ~1e-3 in the third loss. The float32 losses are kept for information.
    lr, momentum, weight_decay = 0.1, 0.9, 5e-4
    t, runs = {}, {}
    for dtype in (torch.float64, torch.float32):
        model = resnet20_deterministic().train().to(dtype)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        losses = []
        for k in range(3):
            xk, tk = cifar_batch(f"input.{k}", k)
            opt.zero_grad()
            loss = F.cross_entropy(model(xk.to(dtype)), tk)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            t[f"x{k}"], t[f"t{k}"] = xk, tk
        runs[dtype] = (model, losses)
    model, losses = runs[torch.float64]
    t["losses"] = np.array(losses, dtype=np.float64)
    t["losses_f32"] = np.array(runs[torch.float32][1], dtype=np.float32)
    # A few parameters after the three updates (float64 run; small; extra help when the losses disagree).
    sd = model.state_dict()
    for name in ("conv1.weight", "fc.weight", "fc.bias"):
        t[f"after.{name}"] = sd[name].float()
    save("resnet20_sgd.safetensors", t,
         "ResNet-20 train mode, torch.optim.SGD on all parameters (incl. BN and biases), 3 steps; step k: "
         "x=det('input.k'), targets (i+k)%10; losses[k] (float64 run, F64) from step k's forward before its update; "
         "losses_f32 = the same in float32; after.<param> = values after the 3 steps of the float64 run",
         lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=0, nesterov=False, **meta)


# ----------------------------------------------------------------------------------------------------------------------
# torchvision ResNet-18 / ResNet-50 (ImageNet architecture, 1000 classes), eval mode
# ----------------------------------------------------------------------------------------------------------------------


def make_torchvision_fixtures():
    x = det_tensor("input", (2, 3, 64, 64))
    for arch in ("resnet18", "resnet50"):
        torch.manual_seed(0)
        model = init_deterministic(getattr(torchvision.models, arch)()).eval()
        pooled = {}
        # A forward hook that returns a value replaces the module's output, so this one must return None.
        def keep_fc_input(module, inp, out):
            pooled["v"] = inp[0].detach().clone()

        hook = model.fc.register_forward_hook(keep_fc_input)
        with torch.no_grad():
            logits = model(x)
        hook.remove()
        t = {"x": x, "logits": logits}
        if arch == "resnet50":
            t["pooled"] = pooled["v"]
        n_params = sum(p.numel() for p in model.parameters())
        save(f"{arch}_eval.safetensors", t,
             f"torchvision.models.{arch}() eval mode, deterministic init, x=det('input') (2,3,64,64)"
             + ("; pooled = input of fc (global-average-pooled features)" if arch == "resnet50" else ""),
             architecture=f"torchvision {arch}", torchvision_version=TORCHVISION_VERSION, params=n_params,
             init=DET_RULES, bn_eps=1e-5)
        print(f"  {arch}: params {n_params}, |logits| max {logits.abs().max().item():.4g}, "
              f"std {logits.std().item():.4g}")


# ----------------------------------------------------------------------------------------------------------------------
# Generator check values for the C# side
# ----------------------------------------------------------------------------------------------------------------------


def make_det_check():
    first4 = det("input", 4)
    for i in range(8):  # vectorised generator == plain-Python generator
        assert det("input", 8)[i] == det_scalar_reference("input", i)
        assert det("conv1.weight", 8)[i] == det_scalar_reference("conv1.weight", i)
    print(f"  fnv1a32('input') = {fnv1a32('input')} (0x{fnv1a32('input'):08X}), "
          f"fnv1a32('conv1.weight') = {fnv1a32('conv1.weight')} (0x{fnv1a32('conv1.weight'):08X})")
    print("  det('input', 4) =", [f"{v!r} ({v.view(np.uint32):08X})" for v in first4])
    raw0 = det("conv1.weight", 1)[0]
    w0 = det_init_value("conv1.weight", (16, 3, 3, 3)).reshape(-1)[0]
    print(f"  det('conv1.weight')[0] = {raw0!r} ({raw0.view(np.uint32):08X}); "
          f"resnet20 conv1.weight[0] = {w0!r} ({w0.view(np.uint32):08X})")

    model = resnet20_deterministic()
    sd = model.state_dict()
    t = {"input_first8": det("input", 8),
         "conv1_weight_first8": sd["conv1.weight"].reshape(-1)[:8],
         "input_hash_first8": hash_u32(fnv1a32("input"), np.arange(8, dtype=np.uint64)).astype(np.uint32)}
    # One check per README rule, first 8 values of a resnet20 state_dict entry.
    for name in ("conv1.weight", "layer2.0.conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                 "bn1.running_var", "fc.weight", "fc.bias"):
        t[f"rule.{name}"] = sd[name].reshape(-1)[:8]
    save("det_check.safetensors", t,
         "Deterministic generator check: input_first8 = det('input', 8); conv1_weight_first8 = resnet20 "
         "conv1.weight (16,3,3,3) flat[:8] after the rule; input_hash_first8 = hash(fnv1a32('input'), i) (U32); "
         "rule.<name> = flat[:8] of that resnet20 state_dict entry after its rule",
         fnv1a32_input=fnv1a32("input"), fnv1a32_conv1_weight=fnv1a32("conv1.weight"),
         conv1_weight_scale=repr(np.float32(math.sqrt(6.0 / 27))), init=DET_RULES)


# ----------------------------------------------------------------------------------------------------------------------
# Optimisers and learning-rate schedules
# ----------------------------------------------------------------------------------------------------------------------


def make_optimizer_fixtures():
    """AdamW and SGD trajectories in float64 (one parameter group that decays everything, and two groups that leave the
    bias out of the decay), and the learning rates of torch's schedulers stepped as ResNetSharp's trainer steps them."""
    torch.set_default_dtype(torch.float64)
    g = gen(901)
    w0, b0 = torch.randn(4, 3, generator=g), torch.randn(4, generator=g)
    grads = [(torch.randn(4, 3, generator=g), torch.randn(4, generator=g)) for _ in range(3)]
    t = {"w0": w0, "b0": b0}
    for k, (gw, gb) in enumerate(grads):
        t[f"gw{k}"], t[f"gb{k}"] = gw, gb

    def run(name, make):
        for groups in ("all", "weights"):
            w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
            opt = make([{"params": [w]}, {"params": [b], "weight_decay": 0.0}] if groups == "weights" else [w, b])
            for k, (gw, gb) in enumerate(grads):
                w.grad, b.grad = gw.clone(), gb.clone()
                opt.step()
                t[f"{name}_{groups}_w{k}"], t[f"{name}_{groups}_b{k}"] = w.detach().clone(), b.detach().clone()

    run("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1))
    run("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))
    torch.set_default_dtype(torch.float32)

    # Schedules: base lr 0.1, 4 steps per epoch, 8 epochs. Step and multi-step are stepped once an epoch,
    # cosine (with and without linear warm-up) once a step, as the trainer does.
    spe, epochs = 4, 8
    total = spe * epochs

    def lrs(make, per_step):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        out = []
        for step in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_step or (step + 1) % spe == 0:
                sched.step()
        return torch.tensor(out, dtype=torch.float64)

    S = torch.optim.lr_scheduler
    t["lr_step"] = lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5), False)
    t["lr_multistep"] = lrs(lambda o: S.MultiStepLR(o, milestones=[2, 5], gamma=0.1), False)
    t["lr_cosine"] = lrs(lambda o: S.CosineAnnealingLR(o, T_max=total, eta_min=0.001), True)
    warm = 2 * spe
    t["lr_warmup_cosine"] = lrs(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=warm),
                                                              S.CosineAnnealingLR(o, T_max=total - warm)], milestones=[warm]), True)
    t = {k: v.detach().numpy() for k, v in t.items()}  # float64 on purpose: stored as F64
    save("optimizers.safetensors", t,
         "float64 AdamW(lr=0.01, betas=(0.9,0.999), eps=1e-8, wd=0.1) and SGD(lr=0.1, momentum=0.9, nesterov, wd=0.01) "
         "3 steps on w (4x3) and b (4) with grads gw{k}, gb{k}; groups 'all' decays both, 'weights' gives b weight_decay 0. "
         "lr_*: learning rate before each of 32 steps (4 per epoch): StepLR(3, 0.5) and MultiStepLR([2,5], 0.1) stepped per epoch, "
         "CosineAnnealingLR(T_max=32, eta_min=0.001) and LinearLR(0.1, 8) then CosineAnnealingLR(T_max=24) per step",
         steps_per_epoch=spe, epochs=epochs)


# ----------------------------------------------------------------------------------------------------------------------


GROUPS = {
    "det": make_det_check, "conv": make_conv_fixtures, "bn": make_bn_fixtures, "relu": make_relu_fixture,
    "pool": make_pool_fixtures, "linear": make_linear_fixture, "add": make_add_fixture,
    "cross_entropy": make_cross_entropy_fixtures, "shortcut": make_shortcut_fixture, "optimizers": make_optimizer_fixtures,
    "resnet20": make_resnet20_fixtures, "torchvision": make_torchvision_fixtures,
}


def main() -> int:
    """make_golden.py [GROUP ...]: every fixture group, or only those named (see GROUPS)."""
    os.makedirs(OUT_DIR, exist_ok=True)
    print(f"torch {TORCH_VERSION}, torchvision {TORCHVISION_VERSION}, writing to {OUT_DIR}")
    chosen = sys.argv[1:] or list(GROUPS)
    unknown = [c for c in chosen if c not in GROUPS]
    if unknown:
        print(f"unknown groups {unknown}; valid: {list(GROUPS)}")
        return 2
    for name in chosen:
        print(f"{name}:")
        GROUPS[name]()

    verify_round_trip()
    total = 0
    print("files (round-trip verified):")
    for filename, tensors, _ in WRITTEN:
        size = os.path.getsize(os.path.join(OUT_DIR, filename))
        total += size
        names = list(tensors)
        shown = names if len(names) <= 16 else names[:8] + [f"... ({len(names)} tensors)"]
        print(f"  {filename:36s} {size:9d} B  {', '.join(shown)}")
    print(f"total {total} bytes in {len(WRITTEN)} files")
    if chosen == list(GROUPS):
        assert total < 3_000_000, "fixtures too big"
    return 0


if __name__ == "__main__":
    sys.exit(main())
