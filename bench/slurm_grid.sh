#!/bin/bash
# RESULTS.md's cluster figure: a 3-setting × 3-seed grid (by default three methods, the
# Ladder, VAT and Mean Teacher, on the 100-label full Ladder preset's network and data,
# EPOCHS epochs; AXIS=lr=0.001,0.002,0.004 for another axis) run by one process and as a 4-task
# job array on a local one-node Slurm (tests/slurm/cluster.sh), each with both cores; prints
# both wall times and the gathered table, and checks it against the single process's.
#   sudo bench/slurm_grid.sh            # EPOCHS=5 by default
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LADDER=${LADDER:-$ROOT/target/release/ladder}
EPOCHS=${EPOCHS:-5}
AXIS=${AXIS:-method=ladder,vat,mean-teacher}
fail() { echo "bench/slurm_grid.sh: FAILED: $*" >&2; exit 1; }
say() { echo "bench/slurm_grid.sh: $*" >&2; }
source "$ROOT/tests/slurm/cluster.sh"

GRID=(--preset mnist-100-full --validation-samples 1000 --epochs "$EPOCHS"
      --grid "$AXIS" --seeds 1-3)
start=$(date +%s%N)
"$LADDER" sweep --out "$W/single" "${GRID[@]}" --quiet >/dev/null
single_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cd "$W"
start=$(date +%s%N)
sbatch --wait --array=0-3 --cpus-per-task=1 "--export=ALL,LADDER=$LADDER,SWEEP_DIR=$W/array" \
    "$ROOT/examples/slurm/sweep.sbatch" "${GRID[@]}" --quiet >/dev/null
array_ms=$(( ($(date +%s%N) - start) / 1000000 ))
"$LADDER" sweep --gather "$W/array"
for f in grid.md grid.csv; do cmp "$W/single/$f" "$W/array/$f" || fail "$f differs"; done
say "one process (2 threads): ${single_ms} ms; 4-task array (1 thread each, 2 at a time): ${array_ms} ms; tables identical"
