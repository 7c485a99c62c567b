#!/usr/bin/env python3
"""Cross-checks `ladder robustness` against torchattacks (issue "Robustness").

Loads networks exported with `ladder export RUN --out NAME.safetensors` into PyTorch, checks
that their clean test error matches the run's, and runs torchattacks' PGD and APGD-CE (L∞)
on the same test digits and radii as `ladder robustness`. With `--ours attacks.csv` it prints
our robust accuracy beside theirs and the difference.

Not part of the build or of CI. Needs `pip install torch torchattacks safetensors`.

    python3 tools/crosscheck_attacks.py --model A=a.safetensors --model Ladder=l.safetensors \
        --data data/mnist-10k --eps 0.1,0.3 --ours results/attacks/attacks.csv
"""

import argparse
import csv
import gzip
import struct
import sys

import torch
import torch.nn.functional as F
import torchattacks
from safetensors import safe_open


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    _, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert dtype == 0x08, "unsigned bytes expected"
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


class Exported(torch.nn.Module):
    """The inference network of a `ladder export` file, as `experiment::export` documents it."""

    def __init__(self, path):
        super().__init__()
        with safe_open(path, framework="pt") as f:
            self.meta = f.metadata()
            self.t = {k: f.get_tensor(k) for k in f.keys()}
        assert self.meta["format"] == "ladder-export/1", self.meta
        assert self.meta["preprocessing"] == "none", "pixels in [0, 1] expected"
        self.method = self.meta["method"]
        self.depth = len(self.meta["architecture"].split("-")) - 1
        act = self.meta["activation"]
        self.slope = float(act.split(":")[1]) if act.startswith("leaky-relu") else 0.0

    def act(self, z):
        return F.leaky_relu(z, self.slope) if self.slope else F.relu(z)

    def forward(self, x):
        h = x.reshape(x.shape[0], -1)
        if self.method == "plain":
            for l in range(1, self.depth + 1):
                h = h @ self.t[f"layers.{l}.weight"] + self.t[f"layers.{l}.bias"]
                if l < self.depth:
                    h = self.act(h)
            return h
        eps = float(self.meta["bn_epsilon"])
        for l in range(1, self.depth + 1):
            z = h @ self.t[f"encoder.{l}.weight"]
            z = (z - self.t[f"encoder.{l}.mean"]) / torch.sqrt(self.t[f"encoder.{l}.var"] + eps)
            z = z + self.t[f"encoder.{l}.beta"]
            if l < self.depth:
                h = self.act(z)
            else:
                gamma = self.t.get(f"encoder.{l}.gamma")
                h = z * gamma if gamma is not None else z
        return h


def robust_accuracy(model, x, y, attack):
    clean = model(x).argmax(1) == y
    adv = attack(x, y)
    inside = (adv - x).abs().max().item()
    fooled = model(adv).argmax(1) != y
    return 100.0 * (clean & ~fooled).float().mean().item(), inside


def ours(path):
    table = {}
    if path:
        with open(path) as f:
            for row in csv.DictReader(f):
                key = (row["model"], float(row["epsilon"]), row["attack"])
                table[key] = float(row["accuracy_percent"])
    return table


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, help="NAME=FILE.safetensors")
    p.add_argument("--data", default="data/mnist-10k")
    p.add_argument("--eps", default="0.1,0.3")
    p.add_argument("--pgd-steps", type=int, default=40)
    p.add_argument("--apgd-steps", type=int, default=100)
    p.add_argument("--examples", type=int, default=0, help="first N test digits (0: all)")
    p.add_argument("--ours", help="attacks.csv of `ladder robustness` on the same runs")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = read_idx(f"{a.data}/t10k-images-idx3-ubyte.gz").float().div(255.0)
    y = read_idx(f"{a.data}/t10k-labels-idx1-ubyte.gz").long()
    if a.examples:
        x, y = x[: a.examples], y[: a.examples]
    x = x.reshape(x.shape[0], 1, 28, 28)  # torchattacks' APGD expects image batches
    mine = ours(a.ours)
    print("| model | ε | attack | torchattacks % | ladder % | difference |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for spec in a.model:
        name, path = spec.split("=", 1)
        model = Exported(path).eval()
        with torch.no_grad():
            err = 100.0 * (model(x).argmax(1) != y).float().mean().item()
        print(f"<!-- {name}: clean test error {err:.2f} % -->", file=sys.stderr)
        for eps in [float(e) for e in a.eps.split(",")]:
            attacks = {
                "pgd": torchattacks.PGD(
                    model, eps=eps, alpha=2.5 * eps / a.pgd_steps, steps=a.pgd_steps,
                    random_start=True,
                ),
                "apgd": torchattacks.APGD(
                    model, norm="Linf", eps=eps, steps=a.apgd_steps, n_restarts=1, loss="ce",
                    seed=0,
                ),
            }
            for kind, attack in attacks.items():
                acc, inside = robust_accuracy(model, x, y, attack)
                assert inside <= eps + 1e-5, f"{kind} left the ball: {inside}"
                ref = mine.get((name, eps, kind))
                ref_s = f"{ref:.2f}" if ref is not None else "-"
                diff = f"{ref - acc:+.2f}" if ref is not None else "-"
                print(f"| {name} | {eps} | {kind} | {acc:.2f} | {ref_s} | {diff} |", flush=True)


if __name__ == "__main__":
    main()
