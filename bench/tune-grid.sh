#!/usr/bin/env bash
# Issue 37's comparison: every method tuned with the same budget (`ladder tune`: its 12
# settings on 1,000 validation digits drawn from the training set, seed 1; the setting of the
# lowest validation error then on seeds 1-5), one tune directory per method and label count
# (OUT/L<labels>/<method>), each shared by TASKS processes of one thread (the metrics do not
# depend on the thread count). Rerun it to continue: finished runs are skipped, unfinished
# ones resumed. Then `python3 bench/tune_table.py OUT` tabulates.
# Usage: [EXTRA="--epochs 1 ..."] bench/tune-grid.sh BINARY OUT "100 1000" [TASKS] [METHOD...]
# (EXTRA: flags added to every tune, for a quick check of the script)
set -euo pipefail
bin=$(realpath "$1")
out=$2
labels=$3
tasks=${4:-2}
shift $(($# < 4 ? $# : 4))
methods=${*:-ladder baseline pi mean-teacher vat}

preset() {
  case $1 in
    ladder) echo mnist-100-full ;;
    baseline) echo mnist-100-baseline ;;
    pi) echo mnist-100-pi ;;
    mean-teacher) echo mnist-100-mean-teacher ;;
    vat) echo mnist-100-vat ;;
    vat-entmin) echo mnist-100-vat-entmin ;;
    *) echo "unknown method $1" >&2; exit 2 ;;
  esac
}

for l in $labels; do
  for m in $methods; do
    dir="$out/L$l/$m"
    mkdir -p "$out/L$l"
    pids=()
    for ((i = 0; i < tasks; i++)); do
      RAYON_NUM_THREADS=1 "$bin" tune --preset "$(preset "$m")" --labeled-samples "$l" ${EXTRA:-} \
        --out "$dir" --shard "$i/$tasks" --quiet >"$dir.task$i.log" 2>&1 &
      pids+=($!)
      # The first task writes tune.json; the others then check it is theirs.
      [ "$i" = 0 ] && sleep 2
    done
    for p in "${pids[@]}"; do wait "$p" || echo "FAILED: $m at $l labels (see $dir.task*.log)" >&2; done
    # A task that finished its share of the search while another still trained stopped
    # there: one more pass (all tasks) takes the final runs.
    if [ ! -f "$dir/summary.json" ]; then
      for ((i = 0; i < tasks; i++)); do
        RAYON_NUM_THREADS=1 "$bin" tune --preset "$(preset "$m")" --labeled-samples "$l" ${EXTRA:-} \
          --out "$dir" --shard "$i/$tasks" --quiet >>"$dir.task$i.log" 2>&1 &
      done
      wait
    fi
  done
done
echo "done: python3 bench/tune_table.py $out"
