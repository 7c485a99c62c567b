#!/usr/bin/env python3
"""The tuned comparison table from the tune directories of bench/tune-grid.sh
(OUT/L<labels>/<method>/summary.json): per label count and method, the chosen setting, its
validation error, and the final seeds' test error (mean ± std, median and interquartile
range, per seed). Tunes not finished are named, not tabulated.

    python3 bench/tune_table.py OUT
"""

import json
import os
import sys


def main():
    root = sys.argv[1]
    for ldir in sorted(os.listdir(root), key=lambda d: int(d[1:]) if d[1:].isdigit() else 0):
        path = os.path.join(root, ldir)
        if not (ldir.startswith("L") and os.path.isdir(path)):
            continue
        print(f"\n### {ldir[1:]} labels\n")
        print("| method | chosen (of 12, on validation) | validation error % | test error % | median [IQR] | per seed |")
        print("| --- | --- | ---: | ---: | --- | --- |")
        for method in sorted(os.listdir(path)):
            tune = os.path.join(path, method)
            summary = os.path.join(tune, "summary.json")
            if not os.path.isdir(tune):
                continue
            if not os.path.exists(summary):
                print(f"| {method} | not finished | | | | |")
                continue
            s = json.load(open(summary))
            chosen = ", ".join(f"{k} {v}" for k, v in s["chosen"])
            cell = s["search"]["cells"][s["search"]["chosen"]]
            q1, q3 = s["test_quartiles"]
            seeds = ", ".join(f"{e:.2f}" for e in s["test_errors"])
            print(
                f"| {method} | {chosen} | {cell['validation_mean']:.2f} | "
                f"{s['test_mean']:.2f} ± {s['test_std']:.2f} | {s['test_median']:.2f} "
                f"[{q1:.2f}–{q3:.2f}] | {seeds} |"
            )


if __name__ == "__main__":
    main()
