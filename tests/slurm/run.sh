#!/bin/bash
# A sweep as a Slurm job array on a real one-node cluster, against the same sweep run by one
# process. Installs slurm-wlm and munge from the distribution's packages (if missing), starts
# munged, slurmctld and slurmd for this machine (tests/slurm/slurm.conf.in), submits
# examples/slurm/sweep.sbatch as a 4-task array with `sbatch --wait`, SIGKILLs one task's
# process mid-unit, resubmits that task, and checks that the gathered table is byte-identical
# to the single process's and that every unit was trained exactly once.
#
# Needs root (it installs packages and runs the daemons as root). Run from anywhere:
#   tests/slurm/run.sh            # LADDER=path/to/ladder to test another binary
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LADDER=${LADDER:-$ROOT/target/release/ladder}
fail() { echo "tests/slurm/run.sh: FAILED: $*" >&2; exit 1; }
say() { echo "tests/slurm/run.sh: $*" >&2; }

source "$ROOT/tests/slurm/cluster.sh"

# 2 cells × 3 seeds: 6 units.
GRID=(--grid lr=0.002,0.004 --seeds 1-3 --encoder-layers 200-50-10
      --denoising-cost-x 100,1,0.1,0.1 --unlabeled-samples 3000 --validation-samples 300
      --epochs 5)

start=$(date +%s%N)
RAYON_NUM_THREADS=1 "$LADDER" sweep --out "$W/single" "${GRID[@]}" --quiet >/dev/null
single_s=$(( ($(date +%s%N) - start) / 1000000 ))

cd "$W"
SUBMIT=(--cpus-per-task=1 "--export=ALL,LADDER=$LADDER,SWEEP_DIR=$W/array"
        "$ROOT/examples/slurm/sweep.sbatch" "${GRID[@]}")
start=$(date +%s%N)
sbatch --wait --array=0-3 "${SUBMIT[@]}" >"$W/sbatch.out" 2>&1 & SB=$!

# Task 0's first unit is unit 1 of the grid: kill its process a little into its second epoch.
UNIT="$W/array/lr=0.002/seed-1"
for _ in $(seq 6000); do
    if [ -f "$UNIT/checkpoint.bin" ] && [ "$(wc -l <"$UNIT/metrics.jsonl" 2>/dev/null || echo 0)" -ge 1 ]; then
        break
    fi
    kill -0 "$SB" 2>/dev/null || fail "the array ended before its first unit's first epoch"
    sleep 0.05
done
pid=$(grep -o '"pid":[0-9]*' "$UNIT/.claim.0" | cut -d: -f2)
[ -n "$pid" ] || fail "no claim in $UNIT"
kill -9 "$pid"
[ ! -f "$UNIT/summary.json" ] || fail "killed too late: the unit had finished"
say "killed task 0's process $pid mid-unit"
if wait "$SB"; then fail "sbatch --wait reported success although a task was killed"; fi
grep -q "Submitted batch job" "$W/sbatch.out" || fail "sbatch: $(cat "$W/sbatch.out")"

# The killed task again: it finishes what the array left.
sbatch --wait --array=0 "${SUBMIT[@]}" >>"$W/sbatch.out" 2>&1 || fail "the resubmitted task failed: $(cat "$W"/ladder-sweep-*.log)"
array_s=$(( ($(date +%s%N) - start) / 1000000 ))

"$LADDER" sweep --gather "$W/array" >"$W/gathered.md" || fail "gather: $(cat "$W/gathered.md")"
for f in grid.md grid.csv; do
    cmp "$W/single/$f" "$W/array/$f" || fail "$f of the array differs from the single process's"
done
trained=$(cat "$W"/ladder-sweep-*.log | grep -c ': trained$' || true)
once=$(cat "$W"/ladder-sweep-*.log | grep ': trained$' | sort | uniq -d)
[ "$trained" = 6 ] && [ -z "$once" ] || fail "units trained $trained times in all (want 6, each once): $once"
grep -q "taking over from host $(hostname), pid $pid" "$W"/ladder-sweep-*.log \
    || fail "the resubmitted task did not say it took over the killed unit"

cat "$W/gathered.md"
say "passed: 4-task array + 1 resubmitted task ${array_s} ms, one process ${single_s} ms; the gathered table is the single process's"
rm -rf "$W"
