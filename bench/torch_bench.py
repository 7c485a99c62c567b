"""What the PyTorch bench scripts share: the embedded data and the timed blocks of steps."""

import gzip
import os
import statistics
import struct
import time

import torch

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist-10k")


def read_idx(name):
    """An IDX file of the embedded MNIST-10k as a uint8 tensor of its shape."""
    raw = gzip.open(os.path.join(DATA, name)).read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def time_steps(step, args, device, examples_per_step, label=""):
    """`args.warmup` untimed steps, then `args.repeats` blocks of `args.steps` timed ones;
    prints each block's examples/s and their median as `examples_per_second: N`."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(args.warmup):
        step(i)
    sync()
    blocks = []
    for r in range(args.repeats):
        start = time.perf_counter()
        for i in range(args.steps):
            step(args.warmup + r * args.steps + i)
        sync()
        blocks.append(args.steps * examples_per_step / (time.perf_counter() - start))
    print("torch:", torch.__version__, "threads:", args.threads, "device:", device, label)
    print("blocks (examples/s):", " ".join(f"{x:.0f}" for x in blocks))
    print(f"examples_per_second: {statistics.median(blocks):.0f}")
