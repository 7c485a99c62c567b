#!/usr/bin/env python3
"""The table of issue 18 from the runs of bench/methods-grid.sh: per label count and method,
test error, seconds per epoch and robust accuracy under FGSM and PGD (L∞ ε 0.1) as mean ±
std over the finished seeds (the sample std, n − 1), with the number of seeds. With --csv FILE, also every run's own numbers.

    python3 bench/methods_table.py OUT [--csv FILE]
"""

import csv
import json
import os
import statistics
import sys

ORDER = ["baseline", "pi", "mean-teacher", "vat", "vat-entmin", "ladder", "ladder-adv", "lvan", "lvan-lw"]
NAMES = {
    "baseline": "Supervised baseline",
    "pi": "Π-model",
    "mean-teacher": "Mean Teacher",
    "vat": "VAT",
    "vat-entmin": "VAT+EntMin",
    "ladder": "Ladder (full)",
    "ladder-adv": "Ladder, thesis adversarial noise",
    "lvan": "LVAN",
    "lvan-lw": "LVAN-LW",
}


def spread(values):
    if not values:
        return "not measured"
    mean = statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {statistics.stdev(values):.2f}"


def attacks(run):
    path = os.path.join(run, "robustness", "attacks.csv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {r["attack"]: float(r["accuracy_percent"]) for r in csv.DictReader(f) if r["epsilon"] == "0.1"}


def main():
    out = sys.argv[1]
    per_run = []
    for labels in sorted(os.listdir(out), key=lambda d: -int(d[1:])):
        print(f"\n{labels[1:]} labels\n")
        print("| method | seeds | test error % | s / epoch (as run, cores shared) | FGSM ε 0.1 acc. % | PGD ε 0.1 acc. % |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for method in ORDER:
            folder = os.path.join(out, labels, method)
            runs = sorted(
                os.path.join(folder, s)
                for s in (os.listdir(folder) if os.path.isdir(folder) else [])
                if os.path.exists(os.path.join(folder, s, "summary.json"))
            )
            summaries = [json.load(open(os.path.join(r, "summary.json"))) for r in runs]
            errors = [s["test_error_percent"] for s in summaries]
            seconds = [s["train_seconds"] / s["epochs"] for s in summaries]
            robust = [attacks(r) for r in runs]
            for r, e, t, a in zip(runs, errors, seconds, robust):
                seed = r.rsplit("seed-", 1)[1]
                row = [labels[1:], method, seed, e, f"{t:.2f}", a.get("fgsm", ""), a.get("pgd", "")]
                per_run.append(row)
            fgsm = [a["fgsm"] for a in robust if "fgsm" in a]
            pgd = [a["pgd"] for a in robust if "pgd" in a]
            seeds = ",".join(r.rsplit("seed-", 1)[1] for r in runs) or "none"
            cells = [NAMES[method], seeds, spread(errors), spread(seconds), spread(fgsm), spread(pgd)]
            print("| " + " | ".join(cells) + " |")
    if "--csv" in sys.argv:
        with open(sys.argv[sys.argv.index("--csv") + 1], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["labels", "method", "seed", "test_error_percent", "seconds_per_epoch", "fgsm_0.1_percent", "pgd_0.1_percent"])
            w.writerows(per_run)


if __name__ == "__main__":
    main()
