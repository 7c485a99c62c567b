#!/usr/bin/env bash
# Issue 6's GPU measurements in one command, for a machine with an NVIDIA GPU and PyTorch but
# no Rust toolchain (the workplace's `device` machine). Build here and carry the binary:
#
#   tools/llvm-bundle-from-pypi.sh            # once, where GitHub is out of reach
#   cargo build --release --features cuda
#   mkdir -p target/gpu && strip -o target/gpu/ladder target/release/ladder && gzip -f target/gpu/ladder
#   # (`--features cuda,gpu-autotune` times burn's autotuned kernels instead; either binary is
#   # about 49 MB gzipped, under the device tool's 64 MiB carry limit)
#   # then, on the GPU machine, from the repository root (carry target/gpu):
#   bench/gpu.sh target/gpu/ladder.gz "$OUT"
#
# Writes into OUT_DIR, each part as soon as it ends (a run cut short keeps what finished):
#   gpu.txt        nvidia-smi and the binary's version;
#   compare.txt    bench/compare.sh 2 ROUNDS on cuda: ours and PyTorch, examples/s, ratio;
#   train150/      `ladder train --device cuda` (the README's 150-epoch MNIST-10k full Ladder),
#                  with train150.txt holding its wall time and its last lines.
# ROUNDS (default 5) and TRAIN_LIMIT (seconds for the training run, default 420) bound it.
set -uo pipefail
cd "$(dirname "$0")/.."
binary=${1:?usage: bench/gpu.sh LADDER_BINARY[.gz] [OUT_DIR]}
out=${2:-gpu-results}
rounds=${ROUNDS:-5}
train_limit=${TRAIN_LIMIT:-420}
mkdir -p "$out"

if [[ $binary == *.gz ]]; then
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  gunzip -c "$binary" > "$unpacked/ladder" && chmod +x "$unpacked/ladder" || exit 1
  binary=$unpacked/ladder
fi
{
  date -u
  nvidia-smi || echo "nvidia-smi failed"
  "$binary" --version
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
} > "$out/gpu.txt" 2>&1

DEVICE=cuda OURS="$binary" bench/compare.sh 2 "$rounds" > "$out/compare.txt" 2>&1
compared=$?
echo "compare.sh exit $compared" >> "$out/compare.txt"

start=$(date +%s.%N)
timeout "$train_limit" "$binary" train --device cuda --out "$out/train150" > "$out/train150.log" 2>&1
status=$?
end=$(date +%s.%N)
{
  awk -v s="$start" -v e="$end" -v x="$status" -v l="$train_limit" \
    'BEGIN {printf "ladder train --device cuda: exit %d, wall %.1f s (limit %d s)\n", x, e - s, l}'
  cat "$out"/train150/summary.json 2>/dev/null || tail -5 "$out/train150.log"
} > "$out/train150.txt"
# The 37 MB checkpoint is not a result; the metrics and summary are.
find "$out/train150" -name checkpoint.bin -delete 2>/dev/null
cat "$out/gpu.txt" "$out/compare.txt" "$out/train150.txt"
[ "$compared" -eq 0 ] && [ "$status" -eq 0 ]
