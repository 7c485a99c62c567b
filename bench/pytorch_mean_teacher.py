#!/usr/bin/env python3
"""Mean Teacher (Tarvainen and Valpola 2017) in PyTorch on the embedded MNIST-10k, with the
loss, ramp-up and moving average of the authors' code (github.com/CuriousAI/mean-teacher,
pytorch/main.py), to check `ladder train --preset mnist-100-mean-teacher` against (issue 37).
Written for this project, not copied.

The network, its normalisation and its evaluation are `ladder`'s (bench/torch_mlp.py): σ
--input-noise on the input and --noise on every layer, each model drawing its own. The
labelled digits are the ones a `ladder` run drew (--split RUN/split.json), or 10 per class
drawn here with --seed; batches of 100 labelled + 100 unlabelled digits, 80 steps per epoch;
Adam --lr decaying linearly to 0 over the last third of the epochs.

From the authors' code:
- class loss: cross-entropy summed over the labelled rows / the minibatch size (all rows);
- consistency: w(t) × Σ (softmax(student) − softmax(teacher))² / classes / the minibatch
  size, over every row, the teacher's output held; w(t) = w_max exp(−5 (1 − t/T)²) over
  --rampup epochs;
- teacher ← α_t teacher + (1 − α_t) student after every step, α_t = min(1 − 1/(t + 1), α);
- the teacher is what is evaluated.
Where this script follows `ladder` rather than the authors: labelled and unlabelled rows
are normalised apart (--joint-bn: together, as the authors' batches are), and evaluation uses
population moments instead of running averages.

Not part of the build or of CI (`pip install torch`). One line per epoch:
`epoch E lr LR cons LOSS student ERROR% teacher ERROR%`.

    python3 bench/pytorch_mean_teacher.py [--split RUN/split.json] [--weight 100] [--epochs 150]
"""

import argparse
import copy
import math

import torch
import torch.nn.functional as F

from torch_mlp import NoisyMLP, error, labelled_indices, learning_rate, mnist10k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", help="a ladder run's split.json: its labelled digits")
    ap.add_argument("--weight", type=float, default=100.0, help="w_max")
    ap.add_argument("--rampup", type=float, default=80.0, help="ramp-up epochs")
    ap.add_argument("--decay", type=float, default=0.99, help="the teacher's α")
    ap.add_argument("--input-noise", type=float, default=0.3)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--joint-bn", action="store_true",
                    help="normalise labelled and unlabelled rows together (the authors' code)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x_train, y_train, x_test, y_test = mnist10k()
    labelled = labelled_indices(y_train, a.split, a.seed)
    x_l, y_l = x_train[labelled], y_train[labelled]
    student = NoisyMLP(a.input_noise, a.noise)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    rows = None if a.joint_bn else [100, 100]
    opt = torch.optim.Adam(student.parameters(), lr=a.lr)
    steps = x_train.shape[0] // 100
    global_step = 0
    for epoch in range(a.epochs):
        lr = learning_rate(a.lr, epoch, a.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        order = torch.randperm(x_train.shape[0])
        total = 0.0
        for s in range(steps):
            t = epoch + s / steps
            w = a.weight * (math.exp(-5.0 * (1 - min(t / a.rampup, 1.0)) ** 2) if a.rampup > 0 else 1.0)
            shuffled = torch.randperm(x_l.shape[0])[:100]
            x = torch.cat([x_l[shuffled], x_train[order[s * 100 : (s + 1) * 100]]])
            out = student(x, rows)
            with torch.no_grad():
                held = teacher(x, rows)
            n = x.shape[0]
            class_loss = F.cross_entropy(out[:100], y_l[shuffled], reduction="sum") / n
            cons = ((F.softmax(out, 1) - F.softmax(held, 1)) ** 2).sum() / 10 / n
            opt.zero_grad()
            (class_loss + w * cons).backward()
            opt.step()
            global_step += 1
            alpha = min(1 - 1 / (global_step + 1), a.decay)
            with torch.no_grad():
                for tp, sp in zip(teacher.parameters(), student.parameters()):
                    tp.mul_(alpha).add_(sp, alpha=1 - alpha)
            total += cons.item()
        print(
            f"epoch {epoch + 1} lr {lr:.5f} cons {total / steps:.5f} "
            f"student {error(student, x_train, x_test, y_test):.2f}% "
            f"teacher {error(teacher, x_train, x_test, y_test):.2f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
