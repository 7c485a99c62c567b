#!/usr/bin/env bash
# RESULTS.md's memory figures (issue 35): the peak resident memory (`/usr/bin/time`'s maximum
# RSS, the whole process: loading, preprocessing, training and evaluation) of
#   - one epoch of the full Ladder (the README's main configuration) on MNIST-format training
#     sets of 8,000 (the embedded set), 60,000 and 120,000 images (bench/make_data.py), and
#   - `ladder bench --memory` (loading, preprocessing and 3 training steps; the evaluations
#     are left out, as three of Conv-Large on 50,000 images take hours on a CPU) of
#     Conv-Large's Γ-model on a CIFAR-10-format 50,000 + 10,000 set, with and without
#     GCN + ZCA, beside bench/pytorch_conv.py's same steps with the same data preprocessed
#     and held in memory (--cifar);
# beside the raw image bytes of each set. Prints Markdown tables.
#   bench/memory.sh            # LADDER=target/release/ladder by default; WORK=a temp dir;
#                              # PYTHON=a python3 with torch (for the CIFAR rows);
#                              # CIFAR=0 skips the (slow on a CPU) Conv-Large rows
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LADDER=${LADDER:-$ROOT/target/release/ladder}
WORK=${WORK:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
peak() { # command... → peak RSS in MiB
  /usr/bin/time -f "%M" -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || {
    cat "$WORK/err" >&2; exit 1; }
  echo "scale=1; $(cat "$WORK/rss") / 1024" | bc
}
mib() { echo "scale=1; $1 / 1048576" | bc; }
echo "| data | images (train + test) | raw image bytes | run | peak RSS |"
echo "| --- | ---: | ---: | --- | ---: |"
for n in 8000 60000 120000; do
  data=()
  if [[ $n != 8000 ]]; then
    python3 "$ROOT/bench/make_data.py" mnist "$n" "$WORK/mnist-$n"
    data=(--data "$WORK/mnist-$n")
  fi
  rss=$(peak "$LADDER" train "${data[@]}" --epochs 1 --out "$WORK/run-$n" --quiet)
  echo "| MNIST-format | $n + 2000 | $(mib $(( (n + 2000) * 784 ))) MiB | full Ladder, 1 epoch | $rss MiB |"
done
[[ ${CIFAR:-1} == 0 ]] && exit 0
python3 "$ROOT/bench/make_data.py" cifar 50000 "$WORK/cifar"
echo
echo "| data | images (train + test) | raw image bytes | run | peak RSS, ours | peak RSS, PyTorch |"
echo "| --- | ---: | ---: | --- | ---: | ---: |"
for zca in true false; do
  flags=() torch_flags=()  # the preset's GCN (55) + ZCA, or neither
  [[ $zca == false ]] && flags=(--zca false --contrast-norm 0) torch_flags=(--no-zca)
  ours=$(peak "$LADDER" bench --memory --data "$WORK/cifar" --preset cifar-4000-conv-gamma \
         "${flags[@]}" --warmup 1 --steps 2 --repeats 1)
  torch=$(peak "$PYTHON" "$ROOT/bench/pytorch_conv.py" --model large --cifar "$WORK/cifar" \
          "${torch_flags[@]}" --warmup 1 --steps 2 --repeats 1)
  echo "| CIFAR-10-format | 50000 + 10000 | $(mib $(( 60000 * 3072 ))) MiB | Conv-Large Γ, 3 steps, GCN + ZCA $zca | $ours MiB | $torch MiB |"
done
