#!/usr/bin/env python3
"""The convolutional Γ-model training steps of `ladder bench` in PyTorch, for side-by-side
timing (issue 20): Conv-Small on MNIST (`--preset mnist-100-conv-gamma`) and Conv-Large on
CIFAR-10's shape (`--preset cifar-4000-conv-gamma`).

Same network, costs and batch layout as the Rust implementation (src/model/): every layer,
pooling included, computes z_pre, normalises it per channel over the rows and positions of
each row group (labelled and unlabelled rows apart, biased variance, epsilon 1e-10) and, in
the corrupted pass, adds Gaussian noise 0.3 (the input too); convolutions have no bias and
are followed by beta per channel and ReLU (Conv-Small) or leaky ReLU 0.1 (Conv-Large);
pooling layers are linear without beta; the top is beta and gamma (Conv-Small: a fully
connected layer of 10) or the normalised global mean itself (Conv-Large, no gamma). 'full'
convolutions pad K - 1, 'valid' ones 0. The clean pass covers the unlabelled rows only. The
Γ decoder denoises the top alone: u = N(softmax(corrupted logits)), z_hat = g(z~, u) with
the Gaussian combinator (ten parameters per unit), cost lambda x mean((z_hat normalised by
the clean pass's moments - z)^2), lambda 1 (Conv-Small) or 4 (Conv-Large); Adam at 0.002.
Batches of 100 labelled + 100 unlabelled: embedded MNIST-10k digits, or random images of
CIFAR-10's shape (only the time is measured), or with --cifar DIR a CIFAR-10-format
directory read whole into memory as a PyTorch user holds it, for the peak-memory comparison
of RESULTS.md (issue 35): the bytes as float32, GCN (scale 55) and ZCA (bias 0.1, fitted on
the training images in float64) applied to the training and test images, both kept.

Not part of the build or of CI (`pip install torch`). Prints `examples_per_second: N` like
`ladder bench`.

    python3 bench/pytorch_conv.py --model small|large [--threads 2] [--warmup 5 --steps 20 --repeats 5]
    python3 bench/pytorch_conv.py --model large --cifar DIR [--no-zca] ...
"""

import argparse
import os

import torch
import torch.nn.functional as F

from torch_bench import read_idx, time_steps

NOISE = 0.3
EPS = 1e-10

# (kind, filters or units, kernel) per layer, input excluded; as src/train/config.rs.
SMALL = [("full", 32, 5), ("max", 0, 2), ("valid", 64, 3), ("full", 64, 3), ("max", 0, 2),
         ("valid", 128, 3), ("valid", 10, 1), ("mean", 0, 0), ("fc", 10, 0)]
LARGE = [("valid", 96, 3), ("full", 96, 3), ("full", 96, 3), ("max", 0, 2),
         ("valid", 192, 3), ("full", 192, 3), ("valid", 192, 3), ("max", 0, 2),
         ("valid", 192, 3), ("valid", 192, 1), ("valid", 10, 1), ("mean", 0, 0)]


def bn(x):
    """Per-channel batch normalisation (per unit for [N, units]), biased variance."""
    axes = [0] if x.dim() == 2 else [0, 2, 3]
    var, mean = torch.var_mean(x, dim=axes, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS), mean, var


def bn_groups(x, n_l):
    a, _, _ = bn(x[:n_l])
    b, mean, var = bn(x[n_l:])
    return torch.cat([a, b], 0), mean, var


class GammaLadder(torch.nn.Module):
    def __init__(self, layers, channels, slope, gamma, lam):
        super().__init__()
        self.layers, self.slope, self.lam = layers, slope, lam
        self.w, self.beta = torch.nn.ParameterList(), torch.nn.ParameterList()
        self.has_beta = []
        c = channels
        for kind, n, k in layers:
            if kind in ("full", "valid"):
                self.w.append(torch.nn.Parameter(torch.randn(n, c, k, k) / (c * k * k) ** 0.5))
                c = n
            elif kind == "fc":
                self.w.append(torch.nn.Parameter(torch.randn(c, n) / c**0.5))
                c = n
            weighted = kind in ("full", "valid", "fc")
            self.has_beta.append(weighted)
            if weighted:
                self.beta.append(torch.nn.Parameter(torch.zeros(n)))
        self.gamma = torch.nn.Parameter(torch.ones(c)) if gamma else None
        init = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
        self.a = torch.nn.Parameter(init.repeat(c, 1).t().contiguous())

    def encode(self, x, n_l, noisy):
        h = x + NOISE * torch.randn_like(x) if noisy else x
        wi = bi = 0
        for i, (kind, _, k) in enumerate(self.layers):
            if kind in ("full", "valid"):
                pre = F.conv2d(h, self.w[wi], padding=k - 1 if kind == "full" else 0)
                wi += 1
            elif kind == "fc":
                pre = h.flatten(1) @ self.w[wi]
                wi += 1
            elif kind == "max":
                pre = F.max_pool2d(h, k)
            else:
                pre = h.mean(dim=(2, 3))
            z, mean, var = bn_groups(pre, n_l) if n_l > 0 else bn(pre)
            if noisy:
                z = z + NOISE * torch.randn_like(z)
            if self.has_beta[i]:
                shape = (1, -1) + (1,) * (z.dim() - 2)
                z_b = z + self.beta[bi].reshape(shape)
                bi += 1
            else:
                z_b = z
            top = i == len(self.layers) - 1
            if top:
                h = z_b * self.gamma if self.gamma is not None else z_b
            else:
                h = F.leaky_relu(z_b, self.slope) if self.has_beta[i] else z_b
        return z, (mean, var), h

    def cost(self, x_l, y_l, x_u):
        n_l = x_l.shape[0]
        z_corr, _, logits = self.encode(torch.cat([x_l, x_u], 0), n_l, True)
        supervised = F.cross_entropy(logits[:n_l], y_l)
        z_clean, (mean, var), _ = self.encode(x_u, 0, False)
        u, _, _ = bn(torch.softmax(logits[n_l:], 1))
        a, z = self.a, z_corr[n_l:]
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        z_hat = (z - mu) * v + mu
        z_bn = (z_hat - mean) / torch.sqrt(var + EPS)
        return supervised + self.lam * ((z_bn - z_clean) ** 2).mean()


def read_cifar(path):
    """Images (N, 3, 32, 32) as float32 in [0, 1] and labels of CIFAR-10 binary batches."""
    raw = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.uint8).reshape(-1, 3073)
    return raw[:, 1:].float().div(255.0), raw[:, 0].long()


def contrast_normalise(x, scale=55.0):
    """Per image: centred, then scaled to L2 norm `scale` (a constant image only centred)."""
    x = x - x.mean(1, keepdim=True)
    norm = x.norm(dim=1, keepdim=True)
    return x * torch.where(norm < 1e-8, torch.ones_like(norm), scale / norm)


def cifar(directory, zca):
    """The training and test sets of a CIFAR-10-format `directory`, preprocessed in memory."""
    files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    parts = [read_cifar(os.path.join(directory, f)) for f in files]
    x_train, y_train = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    del parts
    x_test, y_test = read_cifar(os.path.join(directory, "test_batch.bin"))
    if zca:
        x_train, x_test = contrast_normalise(x_train), contrast_normalise(x_test)
        mean = x_train.double().mean(0)
        cov = torch.zeros(3072, 3072, dtype=torch.float64)
        for block in torch.split(x_train, 1024):
            c = block.double() - mean
            cov += c.t() @ c
        lam, u = torch.linalg.eigh(cov / x_train.shape[0])
        w = ((u / torch.sqrt(lam + 0.1)) @ u.t()).float()
        x_train, x_test = (x_train - mean.float()) @ w, (x_test - mean.float()) @ w
    return x_train.reshape(-1, 3, 32, 32), y_train, x_test.reshape(-1, 3, 32, 32), y_test


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["small", "large"], required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cifar", help="a CIFAR-10-format directory held in memory (--model large)")
    p.add_argument("--no-zca", action="store_true", help="with --cifar: no GCN or ZCA")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    device = torch.device(args.device)
    if args.model == "small":
        images = read_idx("train-images-idx3-ubyte.gz").float().div(255.0).unsqueeze(1)
        labels = read_idx("train-labels-idx1-ubyte.gz").long()
        model = GammaLadder(SMALL, 1, 0.0, True, 1.0)
    else:
        if args.cifar:
            images, labels, _test_images, _test_labels = cifar(args.cifar, not args.no_zca)
        else:
            images = torch.rand(2000, 3, 32, 32)
            labels = torch.randint(0, 10, (2000,))
        model = GammaLadder(LARGE, 3, 0.1, False, 4.0)
    images, labels, model = images.to(device), labels.to(device), model.to(device)
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

    time_steps(step, args, device, 2 * b, "model: " + args.model)


if __name__ == "__main__":
    main()
