#!/usr/bin/env bash
# The reference runs a refactor must leave unchanged (issue "One run model"): 2 epochs of
# mnist-100-full, a plain model A run, a perturb-class semantic run and a 1-epoch Conv-Small
# Γ run, each with its metrics.jsonl copied without timings to OUT/<name>.metrics.
# Usage: bench/reference-runs.sh BINARY OUT   (compare two OUTs with diff -r)
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
"$bin" train --preset mnist-100-full --epochs 2 --out "$runs/full" --quiet
"$bin" train-plain --model a --max-epochs 5 --out "$runs/plain-a" --quiet
"$bin" train-semantic --models perturb-class --per-class 10 --seeds 1 --epochs 3 \
  --out "$runs/semantic" --quiet
"$bin" train --preset mnist-100-conv-gamma --epochs 1 --out "$runs/conv-gamma" --quiet
strip() { jq -c 'del(.. | .seconds?, .train_seconds?, .epoch_seconds?, .elapsed_seconds?)' "$1"; }
strip "$runs/full/metrics.jsonl" >"$out/full.metrics"
strip "$runs/plain-a/metrics.jsonl" >"$out/plain-a.metrics"
strip "$runs/semantic/k10/perturb-class/seed-1/metrics.jsonl" >"$out/semantic.metrics"
strip "$runs/conv-gamma/metrics.jsonl" >"$out/conv-gamma.metrics"
echo "reference metrics in $out"
