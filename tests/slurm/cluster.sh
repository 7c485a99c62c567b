#!/bin/bash
# Sourced by tests/slurm/run.sh and bench/slurm_grid.sh: installs slurm-wlm and munge from the
# distribution's packages if missing, and starts munged, slurmctld and slurmd for a one-node
# cluster of this machine (tests/slurm/slurm.conf.in) in a fresh directory $W, exporting
# SLURM_CONF; the daemons stop when the sourcing script exits. Needs ROOT, LADDER, fail, say.
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

