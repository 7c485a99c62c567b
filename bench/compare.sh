#!/usr/bin/env bash
# Times the full Ladder step of `ladder bench` against bench/pytorch_ladder.py, alternating
# ROUNDS runs of each, and prints each one's median examples/s, their ratio and the peak
# resident memory. Not part of CI. Needs `pip install torch` and a release build
# (`cargo build --release`).
#
#   bench/compare.sh [THREADS=2] [ROUNDS=5]
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
# Runs a command under /usr/bin/time; prints "examples_per_second peak_rss_kb".
measure() {
  /usr/bin/time -v -o "$tmp/time" "$@" > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
  eps=$(grep '^examples_per_second:' "$tmp/out" | awk '{print $2}')
  rss=$(grep 'Maximum resident set size' "$tmp/time" | awk '{print $NF}')
  echo "$eps $rss"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: > "$tmp/ours"; : > "$tmp/torch"
for r in $(seq "$rounds"); do
  RAYON_NUM_THREADS=$threads measure "$ours" bench --device "$device" >> "$tmp/ours"
  measure python3 bench/pytorch_ladder.py --threads "$threads" --device "$device" >> "$tmp/torch"
  echo "round $r: ours $(tail -1 "$tmp/ours" | cut -d' ' -f1) ex/s, pytorch $(tail -1 "$tmp/torch" | cut -d' ' -f1) ex/s" >&2
done
o=$(cut -d' ' -f1 "$tmp/ours" | median); t=$(cut -d' ' -f1 "$tmp/torch" | median)
orss=$(cut -d' ' -f2 "$tmp/ours" | sort -g | tail -1); trss=$(cut -d' ' -f2 "$tmp/torch" | sort -g | tail -1)
echo "device: $device, threads: $threads, rounds: $rounds (alternating)"
echo "ours:    median $o examples/s, peak RSS $((orss / 1024)) MiB"
echo "pytorch: median $t examples/s, peak RSS $((trss / 1024)) MiB"
awk -v o="$o" -v t="$t" 'BEGIN {printf "ratio (ours / pytorch): %.2f\n", o / t}'
