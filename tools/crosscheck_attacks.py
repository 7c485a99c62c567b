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
import sys

import torch
import torchattacks

from ladder_export import Exported, test_set


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
    x, y = test_set(a.data)
    if a.examples:
        x, y = x[: a.examples], y[: a.examples]
    x = x.reshape(x.shape[0], 1, 28, 28)  # torchattacks' APGD expects image batches
    mine = ours(a.ours)
    print("| model | ε | attack | torchattacks % | ladder % | difference |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for spec in a.model:
        name, path = spec.split("=", 1)
        model = Exported(path).eval()
        assert not model.steps, "attacks act on pixels in [0, 1]: no preprocessing expected"
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
