#!/usr/bin/env python3
"""The full Ladder training step of `ladder bench`, in PyTorch, for side-by-side timing.

Same network, costs and batch layout as the Rust implementation (src/model/): encoder
784-1000-500-250-250-250-10 with linear maps without bias, batch normalisation without
learnable parameters (labelled and unlabelled rows normalised separately, epsilon 1e-10),
Gaussian corruption 0.3 of the input and after every normalisation in the corrupted pass,
beta at every layer and gamma at the softmax top, ReLU; a clean pass over the unlabelled rows
only; decoder with vertical maps V, batch-normalised u (the corrupted softmax output at the
top) and the Gaussian combinator g (ten parameters per unit, a2 = a7 = 1); denoising costs
normalised with the clean pass's batch moments, lambda 1000, 10, 0.1 x 5; Adam at 0.002.
Batches of 100 labelled + 100 unlabelled embedded MNIST-10k digits.

Not part of the build or of CI. Install its one dependency with `pip install torch` (CPU is
enough; tested with torch 2.5.1). Prints `examples_per_second: N` like `ladder bench`.

    python3 bench/pytorch_ladder.py [--threads 2] [--warmup 5 --steps 20 --repeats 5] [--device cuda]
"""

import argparse

import torch

from torch_bench import read_idx, time_steps

DIMS = [784, 1000, 500, 250, 250, 250, 10]
LAMBDAS = [1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1]
NOISE = 0.3
EPS = 1e-10


def bn(x):
    """Batch normalisation with the biased variance, as the Rust code."""
    var, mean = torch.var_mean(x, dim=0, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS), mean, var


def bn_groups(x, n_l):
    a, _, _ = bn(x[:n_l])
    b, mean, var = bn(x[n_l:])
    return torch.cat([a, b], 0), mean, var


class Ladder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(i, o) / i**0.5) for i, o in zip(DIMS, DIMS[1:])
        )
        self.beta = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(1, d)) for d in DIMS[1:])
        self.gamma = torch.nn.Parameter(torch.ones(1, DIMS[-1]))
        self.v = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(o, i) / o**0.5) for i, o in zip(DIMS, DIMS[1:])
        )
        init = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
        self.a = torch.nn.ParameterList(
            torch.nn.Parameter(init.repeat(d, 1).t().contiguous()) for d in DIMS
        )

    def activate(self, l, z):
        h = z + self.beta[l - 1]
        return h * self.gamma if l == len(DIMS) - 1 else torch.relu(h)

    def encode(self, x, n_l, noisy):
        z = x + NOISE * torch.randn_like(x) if noisy else x
        zs, moments, h = [z], [], z
        for l in range(1, len(DIMS)):
            pre = h @ self.w[l - 1]
            if n_l > 0:
                z, mean, var = bn_groups(pre, n_l)
            else:
                z, mean, var = bn(pre)
            if noisy:
                z = z + NOISE * torch.randn_like(z)
            zs.append(z)
            moments.append((mean, var))
            h = self.activate(l, z)
        return zs, moments, h

    def g(self, l, z, u):
        a = self.a[l]
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z - mu) * v + mu

    def cost(self, x_l, y_l, x_u):
        n_l = x_l.shape[0]
        zs, _, logits = self.encode(torch.cat([x_l, x_u], 0), n_l, True)
        supervised = torch.nn.functional.cross_entropy(logits[:n_l], y_l)
        clean, moments, _ = self.encode(x_u, 0, False)
        total = supervised
        z_hat = None
        for l in reversed(range(len(DIMS))):
            z_tilde = zs[l][n_l:]
            if l == len(DIMS) - 1:
                u = torch.softmax(logits[n_l:], 1)
            else:
                u = z_hat @ self.v[l]
            u, _, _ = bn(u)
            z_hat = self.g(l, z_tilde, u)
            if l > 0:
                mean, var = moments[l - 1]
                z_bn = (z_hat - mean) / torch.sqrt(var + EPS)
            else:
                z_bn = z_hat
            total = total + LAMBDAS[l] * ((z_bn - clean[l]) ** 2).mean()
        return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    device = torch.device(args.device)
    images = read_idx("train-images-idx3-ubyte.gz").reshape(-1, 784).float().to(device) / 255.0
    labels = read_idx("train-labels-idx1-ubyte.gz").long().to(device)
    model = Ladder().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.002, betas=(0.9, 0.999), eps=1e-8)
    b, n = args.batch, images.shape[0]
    labeled = torch.randperm(n)[: 10 * b].to(device)

    def step(i):
        lab = labeled[(i * b) % len(labeled) :][:b]
        unl = torch.arange(i * b, (i + 1) * b, device=device) % n
        opt.zero_grad(set_to_none=True)
        c = model.cost(images[lab], labels[lab], images[unl])
        c.backward()
        opt.step()

    time_steps(step, args, device, 2 * b, "")


if __name__ == "__main__":
    main()
