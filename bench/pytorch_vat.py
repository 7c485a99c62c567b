#!/usr/bin/env python3
"""VAT (Miyato et al. 2018) in PyTorch on the embedded MNIST-10k, with the loss of the
authors' code (github.com/takerum/vat_tf, vat.py), to check `ladder train --preset
mnist-100-vat` against (issues 18 and 37). Written for this project, not copied.

The network, its normalisation and its evaluation are `ladder`'s (bench/torch_mlp.py), without
noise (the preset's VAT has none). The labelled digits are the ones a `ladder` run drew
(--split RUN/split.json), or 10 per class drawn here with --seed; batches of 100 labelled +
100 unlabelled digits (all 8,000 training digits are the unlabelled set), 80 steps per epoch;
Adam --lr decaying linearly to 0 over the last third of the epochs.

From the authors' code:
- the supervised cost: mean cross-entropy over the labelled batch, which is normalised by its
  own statistics (the authors forward labelled and unlabelled batches apart);
- LDS = KL(p(y|x) ‖ p(y|x + r_vadv)) averaged over the unlabelled batch, p(y|x) from the
  clean pass and held; r_vadv by one power iteration: d ~ N(0, I), d ← ξ·unit(d), d ←
  ∇_d KL(p(y|x) ‖ p(y|x + d)), r_vadv = ε·unit(d), unit() dividing each row by its largest
  magnitude and then by √(1e-6 + ‖·‖²) (get_normalized_vector); the perturbed passes are
  normalised by their own batch statistics;
- the cost is the supervised cost + --weight × LDS (+ the entropy of p(y|x) on the
  unlabelled batch with --entmin, the authors' vatent).

Not part of the build or of CI (`pip install torch`). One line per epoch:
`epoch E lr LR vat LOSS test ERROR%`.

    python3 bench/pytorch_vat.py [--split RUN/split.json] [--eps 5.0] [--epochs 150]
"""

import argparse

import torch
import torch.nn.functional as F

from torch_mlp import NoisyMLP, error, labelled_indices, learning_rate, mnist10k


def kl(p_logits, q_logits):
    """Mean over rows of KL(softmax(p) ‖ softmax(q))."""
    log_p = F.log_softmax(p_logits, 1)
    return (log_p.exp() * (log_p - F.log_softmax(q_logits, 1))).sum(1).mean()


def unit(d):
    """Per row: divided by its largest magnitude, then by √(1e-6 + its squared L2 norm)."""
    d = d / (1e-12 + d.abs().amax(1, keepdim=True))
    return d / torch.sqrt(1e-6 + (d * d).sum(1, keepdim=True))


def virtual_adversarial(model, x, held, xi, eps):
    """r_vadv of `x` by one power iteration from the held clean logits."""
    d = (xi * unit(torch.randn_like(x))).requires_grad_(True)
    (grad,) = torch.autograd.grad(kl(held, model(x + d)), d)
    return eps * unit(grad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", help="a ladder run's split.json: its labelled digits")
    ap.add_argument("--eps", type=float, default=5.0)
    ap.add_argument("--xi", type=float, default=1e-6)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--entmin", action="store_true")
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--float64", action="store_true",
                    help="network and data in double precision: whether float32 rounding "
                         "swamps the ξ-sized difference the power iteration measures")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    if a.float64:
        torch.set_default_dtype(torch.float64)
    x_train, y_train, x_test, y_test = mnist10k()
    if a.float64:
        x_train, x_test = x_train.double(), x_test.double()
    labelled = labelled_indices(y_train, a.split, a.seed)
    x_l, y_l = x_train[labelled], y_train[labelled]
    model = NoisyMLP()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    steps = x_train.shape[0] // 100
    for epoch in range(a.epochs):
        lr = learning_rate(a.lr, epoch, a.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        order = torch.randperm(x_train.shape[0])
        total = 0.0
        for s in range(steps):
            shuffled = torch.randperm(x_l.shape[0])[:100]
            x_u = x_train[order[s * 100 : (s + 1) * 100]]
            out = model(torch.cat([x_l[shuffled], x_u]), [100, 100])
            supervised = F.cross_entropy(out[:100], y_l[shuffled])
            held = out[100:].detach()
            r = virtual_adversarial(model, x_u, held, a.xi, a.eps)
            lds = kl(held, model(x_u + r))
            cost = supervised + a.weight * lds
            if a.entmin:
                log_p = F.log_softmax(out[100:], 1)
                cost = cost - (log_p.exp() * log_p).sum(1).mean()
            opt.zero_grad()
            cost.backward()
            opt.step()
            total += lds.item()
        err = error(model, x_train, x_test, y_test)
        print(f"epoch {epoch + 1} lr {lr:.5f} vat {total / steps:.4f} test {err:.2f}%", flush=True)


if __name__ == "__main__":
    main()
