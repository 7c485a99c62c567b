#!/usr/bin/env python3
"""Loads a `ladder export` file into PyTorch and measures its test error (issue "Ecosystem").

Builds the network the file's metadata describes (format `ladder-export/2`, documented in
`src/experiment/export.rs`; `ladder-export/1` too): Ladder, plain or semantic-noise network,
fully connected or convolutional, with the preprocessing the run used (grey, global contrast
normalisation, the fitted ZCA, the centre crop). Reads the test set of an MNIST-style IDX
directory or a CIFAR-10 binary directory and prints the test error, to compare with
`ladder evaluate` on the run.

Not part of the build or of CI. Needs `pip install torch safetensors`.

    python3 tools/ladder_export.py model.safetensors --data data/mnist-10k
"""

import argparse
import gzip
import json
import os
import struct

import torch
import torch.nn.functional as F
from safetensors import safe_open


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    _, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert dtype == 0x08, "unsigned bytes expected"
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def first_existing(folder, names):
    for n in names:
        if os.path.exists(os.path.join(folder, n)):
            return os.path.join(folder, n)
    raise FileNotFoundError(f"none of {names} in {folder}")


def test_set(folder):
    """Pixels in [0, 1] as [N, H, W] (IDX) or [N, 3, 32, 32] (CIFAR-10), and the labels."""
    if os.path.exists(os.path.join(folder, "test_batch.bin")):
        raw = open(os.path.join(folder, "test_batch.bin"), "rb").read()
        rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(-1, 3073)
        return rows[:, 1:].float().div(255.0).reshape(-1, 3, 32, 32), rows[:, 0].long()
    images = first_existing(folder, ["t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"])
    labels = first_existing(folder, ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"])
    return read_idx(images).float().div(255.0), read_idx(labels).long()


def parse_layers(spec):
    """The `--encoder-layers` grammar: [(kind, numbers)]."""
    out = []
    for p in spec.split("-"):
        head, *nums = p.split(":")
        if head.isdigit():
            out.append(("fc", [int(head)]))
        else:
            out.append((head, [int(n) for n in nums]))
    return out


class Exported(torch.nn.Module):
    """The inference network of a `ladder export` file."""

    def __init__(self, path):
        super().__init__()
        with safe_open(path, framework="pt") as f:
            self.meta = f.metadata()
            self.t = {k: f.get_tensor(k) for k in f.keys()}
        fmt = self.meta["format"]
        assert fmt in ("ladder-export/1", "ladder-export/2"), self.meta
        self.method = self.meta["method"]
        if fmt == "ladder-export/1":
            widths = self.meta["architecture"].split("-")
            self.input_shape = [int(widths[0])]
            self.layers = parse_layers("-".join(widths[1:]))
        else:
            self.input_shape = json.loads(self.meta["input_shape"])
            self.layers = parse_layers(self.meta["layers"])
        act = self.meta["activation"]
        self.slope = float(act.split(":")[1]) if act.startswith("leaky-relu") else 0.0
        self.steps = [s for s in self.meta["preprocessing"].split(",") if s != "none"]

    def preprocess(self, x):
        """Raw pixels in [0, 1] ([N, H, W] or [N, C, H, W]) as the network's inputs."""
        for step in self.steps:
            name, _, value = step.partition(":")
            if name == "standardise":
                mean = self.t["preprocessing.standardise.mean"]
                std = self.t["preprocessing.standardise.std"]
                x = ((x.double() - mean) / std).float()
            elif name == "grey":
                x = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
            elif name == "contrast-norm":
                shape = x.shape
                v = x.reshape(shape[0], -1).double()
                v = v - v.mean(1, keepdim=True)
                norm = v.norm(dim=1, keepdim=True)
                factor = torch.where(norm < 1e-8, torch.ones_like(norm), float(value) / norm)
                x = (v * factor).float().reshape(shape)
            elif name == "zca":
                shape = x.shape
                v = x.reshape(shape[0], -1).double() - self.t["preprocessing.zca.mean"]
                x = (v @ self.t["preprocessing.zca.matrix"]).float().reshape(shape)
            elif name == "crop":
                side = int(value)
                h, w = x.shape[-2], x.shape[-1]
                top, left = (h - side) // 2, (w - side) // 2
                x = x[..., top : top + side, left : left + side]
            else:
                raise ValueError(f"unknown preprocessing step {step}")
        return x.reshape(x.shape[0], *self.input_shape)

    def act(self, z):
        return F.leaky_relu(z, self.slope) if self.slope else F.relu(z)

    @staticmethod
    def apply(kind, nums, h, w):
        """Layer `kind` on h ([N, C, H, W] maps or [N, d] vectors) with weight w."""
        if kind == "fc":
            return h.reshape(h.shape[0], -1) @ w
        if kind in ("convv", "convf", "convs"):
            k = nums[1]
            pad = {"convv": 0, "convf": k - 1, "convs": (k - 1) // 2}[kind]
            return F.conv2d(h, w, stride=(nums[2], nums[3]), padding=pad)
        if kind == "maxpool":
            return F.max_pool2d(h, (nums[0], nums[1]), stride=(nums[0], nums[1]))
        if kind == "globalmeanpool":
            return h.mean((2, 3))
        raise ValueError(f"unknown layer {kind}")

    @staticmethod
    def per_channel(v, z):
        return v.reshape(1, -1, 1, 1) if z.dim() == 4 else v

    def forward(self, x):
        h = x
        if "input.mean" in self.t:
            h = h - self.t["input.mean"].reshape(1, *h.shape[1:])
        depth = len(self.layers)
        ladder = self.method == "ladder"
        prefix = "encoder" if ladder else "layers"
        eps = float(self.meta.get("bn_epsilon", 0))
        for l, (kind, nums) in enumerate(self.layers, start=1):
            z = self.apply(kind, nums, h, self.t.get(f"{prefix}.{l}.weight"))
            pc = lambda v: self.per_channel(v, z)  # noqa: E731
            if ladder:
                mean, var = self.t[f"{prefix}.{l}.mean"], self.t[f"{prefix}.{l}.var"]
                z = (z - pc(mean)) / torch.sqrt(pc(var) + eps)
                beta = self.t.get(f"{prefix}.{l}.beta")
                if beta is not None:
                    z = z + pc(beta)
            else:
                z = z + pc(self.t[f"{prefix}.{l}.bias"])
            pooling = kind in ("maxpool", "globalmeanpool")
            if l < depth:
                h = z if pooling else self.act(z)
            else:
                gamma = self.t.get(f"{prefix}.{l}.gamma")
                h = z * gamma if gamma is not None else z
        return h.reshape(h.shape[0], -1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="a file `ladder export` wrote")
    p.add_argument("--data", default="data/mnist-10k", help="IDX or CIFAR-10 binary directory")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = Exported(a.model).eval()
    x, y = test_set(a.data)
    with torch.no_grad():
        wrong = sum(
            (model(model.preprocess(x[i : i + 1000])).argmax(1) != y[i : i + 1000]).sum().item()
            for i in range(0, len(y), 1000)
        )
    m = model.meta
    print(f"{a.model}: {m['method']} {m.get('layers', m['architecture'])}, preprocessing "
          f"{m['preprocessing']}: test error {100.0 * wrong / len(y):.2f} % on {len(y)} examples")


if __name__ == "__main__":
    main()
