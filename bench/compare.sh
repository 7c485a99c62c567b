#!/usr/bin/env bash
# Times a Ladder training step of `ladder bench` against the same step in PyTorch,
# alternating ROUNDS runs of each, and prints each one's median examples/s, their ratio and
# the peak resident memory. MODEL picks the step: fc (the full Ladder, bench/pytorch_ladder.py),
# conv-small (the Conv-Small Γ-model on MNIST-10k) or conv-large (the Conv-Large Γ-model on
# random images in CIFAR-10's layout; only the time counts), both bench/pytorch_conv.py. Not
# part of CI. Needs `pip install torch` and a release build (`cargo build --release`).
#
#   [MODEL=fc] [WARMUP=5 STEPS=20 REPEATS=5] bench/compare.sh [THREADS=2] [ROUNDS=5]
#   DEVICE=cuda OURS=path/to/ladder bench/compare.sh 2 5   # both on the GPU (a --features cuda build)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
rounds=${2:-5}
device=${DEVICE:-cpu}
ours=${OURS:-target/release/ladder}
[ -x "$ours" ] || { echo "build first: cargo build --release" >&2; exit 1; }
python3 -c 'import torch' 2>/dev/null || { echo "needs PyTorch: pip install torch" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${MODEL:-fc}
# Untimed steps, steps per timed block and blocks of each run, for both programs.
timing=(--warmup "${WARMUP:-5}" --steps "${STEPS:-20}" --repeats "${REPEATS:-5}")
case $model in
  fc) ours_args=(bench); torch_args=(bench/pytorch_ladder.py) ;;
  conv-small) ours_args=(bench --preset mnist-100-conv-gamma); torch_args=(bench/pytorch_conv.py --model small) ;;
  conv-large)
    # Random pixels in CIFAR-10's binary layout, 300 images per file: few, because `ladder
    # bench` also times evaluations over the whole set.
    python3 - "$tmp/cifar" <<'PY'
import os, random, sys
os.makedirs(sys.argv[1])
rng = random.Random(1)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        for _ in range(300):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
PY
    ours_args=(bench --preset cifar-4000-conv-gamma --labeled-samples 500 --zca false --data "$tmp/cifar")
    torch_args=(bench/pytorch_conv.py --model large) ;;
  *) echo "MODEL is fc, conv-small or conv-large" >&2; exit 2 ;;
esac
# Runs a command under /usr/bin/time; prints "examples_per_second peak_rss_kb".
measure() {
  /usr/bin/time -v -o "$tmp/time" "$@" > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
  eps=$(grep '^examples_per_second:' "$tmp/out" | awk '{print $2}')
  rss=$(grep 'Maximum resident set size' "$tmp/time" | awk '{print $NF}')
  # Ours also reports its peak after the timed steps, before its evaluations.
  # (PyTorch's does not: no match is no failure.)
  steps=$(grep '^peak memory after the timed steps:' "$tmp/out" | awk '{print $7}' || true)
  echo "$eps $rss ${steps:--}"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: > "$tmp/ours"; : > "$tmp/torch"
for r in $(seq "$rounds"); do
  RAYON_NUM_THREADS=$threads measure "$ours" "${ours_args[@]}" "${timing[@]}" --device "$device" >> "$tmp/ours"
  measure python3 "${torch_args[@]}" "${timing[@]}" --threads "$threads" --device "$device" >> "$tmp/torch"
  echo "round $r: ours $(tail -1 "$tmp/ours" | cut -d' ' -f1) ex/s, pytorch $(tail -1 "$tmp/torch" | cut -d' ' -f1) ex/s" >&2
done
o=$(cut -d' ' -f1 "$tmp/ours" | median); t=$(cut -d' ' -f1 "$tmp/torch" | median)
orss=$(cut -d' ' -f2 "$tmp/ours" | sort -g | tail -1); trss=$(cut -d' ' -f2 "$tmp/torch" | sort -g | tail -1)
echo "model: $model, device: $device, threads: $threads, rounds: $rounds (alternating)"
osteps=$(cut -d' ' -f3 "$tmp/ours" | sort -g | tail -1)
echo "ours:    median $o examples/s, peak RSS $((orss / 1024)) MiB ($osteps MiB after the timed steps, before ladder bench's evaluations)"
echo "pytorch: median $t examples/s, peak RSS $((trss / 1024)) MiB"
awk -v o="$o" -v t="$t" 'BEGIN {printf "ratio (ours / pytorch): %.2f\n", o / t}'
