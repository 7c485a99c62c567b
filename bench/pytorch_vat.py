#!/usr/bin/env python3
"""VAT (Miyato et al. 2018) in PyTorch on the embedded MNIST-10k: a second implementation
to check `ladder train --method vat` against (issue 18), not a copy of it.

Network 784-1000-500-250-250-250-10, linear maps without bias, batch normalisation with
PyTorch's learnable scale and shift after every map, ReLU; 10 labelled digits per class
drawn with --seed; batches of 100 labelled + 100 unlabelled digits, 80 steps per epoch;
Adam 0.002 decaying linearly to 0 over the last third of the epochs; the loss is the
cross-entropy plus --weight x KL(p(y|x) || p(y|x + r_vadv)) on the unlabelled batch, p held,
r_vadv from one power iteration (xi --xi, radius --eps, the authors' normalisation). The
perturbed passes normalise by their own batch statistics and leave the running averages
alone; the test error uses the running averages.

Not part of the build or of CI (`pip install torch`). One line per epoch:
`epoch E lr LR vat LOSS test ERROR%`.

    python3 bench/pytorch_vat.py [--eps 5.0] [--epochs 150] [--seed 1] [--threads 1]
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_bench import read_idx

DIMS = [784, 1000, 500, 250, 250, 250, 10]


def images(name):
    return read_idx(name).float().div(255.0).reshape(-1, 784)


def network():
    layers = []
    for i in range(len(DIMS) - 1):
        layers += [nn.Linear(DIMS[i], DIMS[i + 1], bias=False), nn.BatchNorm1d(DIMS[i + 1])]
        if i < len(DIMS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def kl(p_logits, q_logits):
    log_p = F.log_softmax(p_logits, 1)
    return (log_p.exp() * (log_p - F.log_softmax(q_logits, 1))).sum(1).mean()


def unit(d):
    """Per row: divided by its largest magnitude, then by its L2 norm (get_normalized_vector)."""
    d = d / (1e-12 + d.abs().amax(1, keepdim=True))
    return d / torch.sqrt(1e-6 + (d * d).sum(1, keepdim=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eps", type=float, default=5.0)
    ap.add_argument("--xi", type=float, default=1e-6)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x_train, y_train = images("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz").long()
    x_test, y_test = images("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz").long()
    g = torch.Generator().manual_seed(a.seed)
    labelled = torch.cat(
        [torch.nonzero(y_train == c).flatten()[torch.randperm(int((y_train == c).sum()), generator=g)[:10]] for c in range(10)]
    )
    x_l, y_l = x_train[labelled], y_train[labelled]
    net = network()
    norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    opt = torch.optim.Adam(net.parameters(), lr=0.002)

    def perturbed(x):
        for m in norms:
            m.momentum = 0.0  # batch statistics, running averages untouched
        out = net(x)
        for m in norms:
            m.momentum = 0.1
        return out

    steps = x_train.shape[0] // 100
    decay_from = int(0.67 * a.epochs)
    for epoch in range(1, a.epochs + 1):
        lr = 0.002 * min(1.0, (a.epochs - epoch) / max(1, a.epochs - decay_from))
        for group in opt.param_groups:
            group["lr"] = lr
        net.train()
        order = torch.randperm(x_train.shape[0])
        total = 0.0
        for s in range(steps):
            x_u = x_train[order[s * 100 : (s + 1) * 100]]
            shuffled = torch.randperm(x_l.shape[0])
            supervised = F.cross_entropy(net(x_l[shuffled]), y_l[shuffled])
            with torch.no_grad():
                p = net(x_u)
            d = (a.xi * unit(torch.randn_like(x_u))).requires_grad_(True)
            (grad,) = torch.autograd.grad(kl(p, perturbed(x_u + d)), d)
            r = a.eps * unit(grad)
            vat = kl(p, perturbed(x_u + r))
            opt.zero_grad()
            (supervised + a.weight * vat).backward()
            opt.step()
            total += vat.item()
        net.eval()
        with torch.no_grad():
            error = (net(x_test).argmax(1) != y_test).float().mean().item() * 100
        print(f"epoch {epoch} lr {lr:.5f} vat {total / steps:.4f} test {error:.2f}%", flush=True)


if __name__ == "__main__":
    main()
