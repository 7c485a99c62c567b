#!/usr/bin/env python3
"""The table of issue 18 from the runs of bench/methods-grid.sh: per label count and method,
test error, seconds per epoch and robust accuracy under FGSM and PGD (L∞ ε 0.1) as mean ±
std over the finished seeds (the sample std, n − 1), with the number of seeds. With --csv FILE, also every run's own numbers.

    python3 bench/methods_table.py OUT [--earlier CSV] [--csv FILE]

--earlier CSV adds the runs of an earlier --csv (runs whose directories are gone) for every
label count, method and seed that OUT has no finished run of; where OUT has one too, the two
must agree on the test error, or the script stops.
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


def finished_runs(out):
    """Every finished run under OUT as a row (labels, method, seed, error, s/epoch, FGSM, PGD)."""
    rows = {}
    for labels in os.listdir(out):
        for method in ORDER:
            folder = os.path.join(out, labels, method)
            for s in os.listdir(folder) if os.path.isdir(folder) else []:
                run = os.path.join(folder, s)
                if not os.path.exists(os.path.join(run, "summary.json")):
                    continue
                summary = json.load(open(os.path.join(run, "summary.json")))
                a = attacks(run)
                seed = s.rsplit("seed-", 1)[1]
                rows[(labels[1:], method, seed)] = [
                    summary["test_error_percent"],
                    round(summary["train_seconds"] / summary["epochs"], 2),
                    a.get("fgsm", ""),
                    a.get("pgd", ""),
                ]
    return rows


def earlier_runs(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            num = lambda k: float(r[k]) if r[k] != "" else ""
            rows[(r["labels"], r["method"], r["seed"])] = [
                float(r["test_error_percent"]),
                num("seconds_per_epoch"),
                num("fgsm_0.1_percent"),
                num("pgd_0.1_percent"),
            ]
    return rows


def option(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def main():
    rows = finished_runs(sys.argv[1])
    if option("--earlier"):
        for key, row in earlier_runs(option("--earlier")).items():
            if key in rows and rows[key][0] != row[0]:
                sys.exit(f"{key}: {rows[key][0]} % here, {row[0]} % in {option('--earlier')}")
            rows.setdefault(key, row)
    label_counts = sorted({k[0] for k in rows}, key=lambda l: -int(l))
    per_run = []
    for labels in label_counts:
        print(f"\n{labels} labels\n")
        print("| method | seeds | test error % | s / epoch (as run, cores shared) | FGSM ε 0.1 acc. % | PGD ε 0.1 acc. % |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for method in ORDER:
            seeds = sorted((k[2] for k in rows if k[:2] == (labels, method)), key=int)
            runs = [rows[(labels, method, s)] for s in seeds]
            for s, (err, secs, fgsm, pgd) in zip(seeds, runs):
                per_run.append([labels, method, s, err, f"{secs:.2f}" if secs != "" else "", fgsm, pgd])
            column = lambda i: [r[i] for r in runs if r[i] != ""]
            cells = [NAMES[method], ",".join(seeds) or "none"] + [spread(column(i)) for i in range(4)]
            print("| " + " | ".join(cells) + " |")
    if option("--csv"):
        with open(option("--csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["labels", "method", "seed", "test_error_percent", "seconds_per_epoch", "fgsm_0.1_percent", "pgd_0.1_percent"])
            w.writerows(per_run)


if __name__ == "__main__":
    main()
