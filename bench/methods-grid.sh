#!/usr/bin/env bash
# Issue 18's comparison: every method on the full Ladder's network, for each label count and
# seed, one run directory each (OUT/L<labels>/<method>/seed-<s>), two at a time with one
# thread each (the metrics do not depend on the thread count), each run followed by its
# robust accuracy (FGSM and PGD-40 at L∞ ε 0.1 on the test set, in <run>/robustness).
# Finished runs are skipped and unfinished ones resumed, so the script can be rerun to
# continue. Then `bench/methods_table.py OUT` tabulates.
# Usage: bench/methods-grid.sh BINARY OUT "100 50" "1 2 3" [METHOD...]
set -euo pipefail
bin=$(realpath "$1")
out=$2
labels=$3
seeds=$4
shift 4
methods=${*:-baseline pi mean-teacher vat vat-entmin ladder ladder-adv lvan lvan-lw}

# The command line of one method at one label count (the LVAN presets carry Shinoda et al.'s
# settings for 100 and 50 labels; the other presets take the label count as a flag).
args() {
  local method=$1 l=$2
  case $method in
    baseline) echo "--preset mnist-100-baseline --labeled-samples $l" ;;
    pi) echo "--preset mnist-100-pi --labeled-samples $l" ;;
    mean-teacher) echo "--preset mnist-100-mean-teacher --labeled-samples $l" ;;
    vat) echo "--preset mnist-100-vat --labeled-samples $l" ;;
    vat-entmin) echo "--preset mnist-100-vat-entmin --labeled-samples $l" ;;
    ladder) echo "--preset mnist-100-full --labeled-samples $l" ;;
    ladder-adv) echo "--preset mnist-100-adv --labeled-samples $l" ;;
    lvan) echo "--preset mnist-$l-lvan" ;;
    lvan-lw) echo "--preset mnist-$l-lvan-lw" ;;
    *) echo "unknown method $method" >&2; exit 2 ;;
  esac
}

robust() {
  echo "$bin robustness $1 --attacks fgsm,pgd --attack-epsilons 0.1 --epsilons 0 --sigmas 0 \
--out $1/robustness --force >/dev/null"
}

jobs=$(mktemp)
trap 'rm -f "$jobs"' EXIT
for l in $labels; do
  for s in $seeds; do
    for m in $methods; do
      dir="$out/L$l/$m/seed-$s"
      if [ -f "$dir/summary.json" ]; then
        [ -f "$dir/robustness/attacks.csv" ] || robust "$dir" >>"$jobs"
      elif [ -d "$dir" ]; then
        # An unfinished run continues from its checkpoint.
        echo "$bin train --resume $dir --quiet && $(robust "$dir")" >>"$jobs"
      else
        echo "$bin train $(args "$m" "$l") --seed $s --out $dir --quiet && $(robust "$dir")" >>"$jobs"
      fi
    done
  done
done
echo "$(wc -l <"$jobs") jobs"
RAYON_NUM_THREADS=1 xargs -P 2 -I{} sh -c '{} || echo "FAILED: {}" >&2' <"$jobs"
echo "done: bench/methods_table.py $out"
