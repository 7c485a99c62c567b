#!/usr/bin/env python3
"""Which classes a Ladder run gets wrong, and how typical its labelled digits are (issue 37's
question about the 50-label seed 3). For each run directory (a finished `ladder train` run on
the embedded MNIST-10k, with its split.json): the test error per class, the most frequent
confusions, and per class the labelled digits' typicality: the cosine between each labelled
digit and the mean of its class's training digits, against the class's median cosine over
all its training digits (a labelled digit far below it is an unusual way of writing the
class). Needs the ladder binary (for `ladder predict`); no other packages.

    python3 bench/label_analysis.py LADDER_BINARY RUN_DIR [RUN_DIR...]
"""

import gzip
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist-10k")


def idx(name):
    raw = gzip.open(os.path.join(DATA, name)).read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    if ndim == 1:
        return list(body)
    size = dims[1] * dims[2]
    return [body[i * size : (i + 1) * size] for i in range(dims[0])]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def class_means(images, labels):
    sums = [[0.0] * 784 for _ in range(10)]
    counts = [0] * 10
    for im, c in zip(images, labels):
        counts[c] += 1
        row = sums[c]
        for i, v in enumerate(im):
            row[i] += v
    return [[v / counts[c] for v in sums[c]] for c in range(10)]


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def predictions(binary, run):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "labels.txt")
        images = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
        subprocess.run([binary, "predict", run, images, "--out", out], check=True)
        return [int(line) for line in open(out)]


def main():
    binary, runs = sys.argv[1], sys.argv[2:]
    train, train_y = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    test_y = idx("t10k-labels-idx1-ubyte.gz")
    means = class_means(train, train_y)
    typical = [[] for _ in range(10)]
    for im, c in zip(train, train_y):
        typical[c].append(cosine(im, means[c]))
    medians = [median(t) for t in typical]
    for run in runs:
        split = json.load(open(os.path.join(run, "split.json")))
        pred = predictions(binary, run)
        wrong = [0] * 10
        total = [0] * 10
        confusions = {}
        for p, y in zip(pred, test_y):
            total[y] += 1
            if p != y:
                wrong[y] += 1
                confusions[(y, p)] = confusions.get((y, p), 0) + 1
        err = 100 * sum(wrong) / len(test_y)
        print(f"## {run}: test error {err:.2f} %")
        print("class: error % | labelled digits' cosine to the class mean (class median)")
        for c in range(10):
            cos = [cosine(train[i], means[c]) for i in split["labeled"] if train_y[i] == c]
            shown = ", ".join(f"{v:.2f}" for v in sorted(cos))
            print(f"  {c}: {100 * wrong[c] / total[c]:5.1f} | {shown} ({medians[c]:.2f})")
        top = sorted(confusions.items(), key=lambda kv: -kv[1])[:5]
        print("most frequent confusions (true -> predicted: count):",
              ", ".join(f"{y}->{p}: {n}" for (y, p), n in top))


if __name__ == "__main__":
    main()
