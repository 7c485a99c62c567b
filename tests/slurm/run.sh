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

[ "$(id -u)" = 0 ] || fail "run it as root: it installs slurm-wlm and munge and starts their daemons"
if [ ! -x "$LADDER" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null; }
fi

W=$(mktemp -d /tmp/ladder-slurm.XXXXXX)
mkdir -p "$W/state" "$W/spool"
PIDS=()
OUR_MUNGED=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$OUR_MUNGED" ]; then kill "$(cat /run/munge/munged.pid 2>/dev/null)" 2>/dev/null || true; fi
}
trap cleanup EXIT

# munge: the authentication every Slurm message carries.
if ! munge -n >/dev/null 2>&1; then
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    OUR_MUNGED=1
fi
munge -n | unmunge >/dev/null || fail "munge does not authenticate"

HOST=$(hostname -s)
NODE=$(slurmd -C | head -1)
sed -e "s|@HOST@|$HOST|g" -e "s|@DIR@|$W|g" -e "s|@NODE@|$NODE|" \
    -e "s|@CTLD_PORT@|16817|" -e "s|@D_PORT@|16818|" \
    "$ROOT/tests/slurm/slurm.conf.in" >"$W/slurm.conf"
export SLURM_CONF=$W/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$W/slurmctld.out" 2>&1 & PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$W/slurmd.out" 2>&1 & PIDS+=($!)
for _ in $(seq 120); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || { cat "$W"/slurmctld.log "$W"/slurmd.log >&2 || true; fail "the node did not come up (state: '$state')"; }
say "one-node cluster up: $NODE"

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
