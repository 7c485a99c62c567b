#!/usr/bin/env python3
"""Generated data sets for the memory figures of RESULTS.md (issue 35): their sizes are real,
their images are not meant to be learnt from.

  bench/make_data.py mnist N OUT_DIR     # N training images in MNIST's IDX format: the embedded
                                         # MNIST-10k's 8,000 training digits repeated, its
                                         # 2,000 test digits as the test set
  bench/make_data.py cifar N OUT_DIR     # CIFAR-10's binary format: N training images (whole
                                         # batches of 10,000) and 10,000 test images, seeded
                                         # random bytes
"""
import gzip
import os
import random
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EMBEDDED = os.path.join(ROOT, "data", "mnist-10k")


def read_idx(name):
    with gzip.open(os.path.join(EMBEDDED, name)) as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write_idx(path, magic, dims, body):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(body)


def mnist(n, out):
    (count, h, w), images = read_idx("train-images-idx3-ubyte.gz")
    _, labels = read_idx("train-labels-idx1-ubyte.gz")
    reps, rest = divmod(n, count)
    size = h * w
    write_idx(
        os.path.join(out, "train-images-idx3-ubyte"),
        0x803,
        (n, h, w),
        images * reps + images[: rest * size],
    )
    write_idx(
        os.path.join(out, "train-labels-idx1-ubyte"),
        0x801,
        (n,),
        labels * reps + labels[:rest],
    )
    (tn, _, _), test = read_idx("t10k-images-idx3-ubyte.gz")
    _, test_labels = read_idx("t10k-labels-idx1-ubyte.gz")
    write_idx(os.path.join(out, "t10k-images-idx3-ubyte"), 0x803, (tn, h, w), test)
    write_idx(os.path.join(out, "t10k-labels-idx1-ubyte"), 0x801, (tn,), test_labels)


def cifar(n, out):
    if n % 10000 or not 10000 <= n <= 50000:
        sys.exit("cifar: N must be 10000, 20000, … or 50000 (whole batches)")
    rng = random.Random(1)
    def batch(path):
        with open(path, "wb") as f:
            for i in range(10000):
                f.write(bytes([i % 10]) + rng.randbytes(3072))
    for b in range(n // 10000):
        batch(os.path.join(out, f"data_batch_{b + 1}.bin"))
    batch(os.path.join(out, "test_batch.bin"))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("mnist", "cifar"):
        sys.exit(__doc__)
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    (mnist if kind == "mnist" else cifar)(n, out)


if __name__ == "__main__":
    main()
