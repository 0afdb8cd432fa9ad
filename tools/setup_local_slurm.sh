#!/usr/bin/env bash
# Set up a one-node Slurm cluster on this machine (Debian/Ubuntu, as root).
#
#   tools/setup_local_slurm.sh            # install if missing, configure, start
#   PARTITION=debug tools/setup_local_slurm.sh
#
# Installs Debian's slurm-wlm and munge if missing, writes a slurm.conf with
# one node "$(hostname)" (CPUs = nproc) in partition $PARTITION (Default=YES),
# creates a munge key if missing and starts munged, slurmctld and slurmd
# directly (no systemd). Idempotent: when the cluster already answers, it only
# checks it. The last line printed is the partition name to use, e.g.
#   GPUS=2 GPUS_PER_NODE=0 CPUS_PER_TASK=1 tools/slurm_train.sh debug job cfg wd
# Exits non-zero with a message saying what failed.
set -euo pipefail

PARTITION=${PARTITION:-debug}
CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
RUN_DIR=/run/slurm

log() { echo "[setup_local_slurm] $*" >&2; }
die() { echo "[setup_local_slurm] ERROR: $*" >&2; exit 1; }

cluster_ok() {
    # The controller answers and our node is usable in our partition.
    timeout 10 sinfo -h -p "$PARTITION" -o '%T' 2>/dev/null \
        | grep -Eq '^(idle|mixed|allocated|completing)'
}

# --- fast path ---------------------------------------------------------------
if command -v sinfo >/dev/null 2>&1 && cluster_ok; then
    log "cluster is up: $(sinfo -h -p "$PARTITION" -o '%P %T %c CPUs %N')"
    echo "$PARTITION"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts daemons)"

# --- install -----------------------------------------------------------------
need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v srun >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 \
        || die "missing ${need[*]} and no apt-get: install Slurm and munge by hand"
    log "installing ${need[*]} (slurm-wlm, munge) with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi
for b in slurmctld slurmd srun sinfo munged; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found after install"
done

# --- munge -------------------------------------------------------------------
MUNGE_KEY=/etc/munge/munge.key
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s "$MUNGE_KEY" ]; then
    log "creating $MUNGE_KEY"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$MUNGE_KEY" --force
    else
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
fi
MUNGE_USER=root
id munge >/dev/null 2>&1 && MUNGE_USER=munge
chown -R "$MUNGE_USER": /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 "$MUNGE_KEY"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    rm -f /run/munge/munged.pid
    if [ "$MUNGE_USER" = root ]; then
        munged --force
    else
        su -s /bin/sh munge -c 'munged --force' || munged --force
    fi
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null 2>&1 \
        || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf --------------------------------------------------------------
HOST=$(hostname -s)
NCPU=$(nproc)
# Memory (MB) that slurmd will report; leave a margin so the node is not
# drained for "Low RealMemory".
MEM=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR" "$RUN_DIR"
NEW_CONF=$(cat <<EOF
# Written by tools/setup_local_slurm.sh: one-node cluster on localhost.
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$HOST CPUs=$NCPU RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
conf_changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW_CONF" ]; then
    log "writing $CONF (node $HOST, $NCPU CPUs, partition $PARTITION)"
    echo "$NEW_CONF" > "$CONF"
    conf_changed=1
fi
# cons_tres wants a cgroup.conf only with cgroup plugins; none used here.

# --- daemons -----------------------------------------------------------------
running() { pgrep -x "$1" >/dev/null 2>&1; }
stop_daemon() {  # only the daemon's own pid (from its pid file)
    local pidf="$RUN_DIR/$1.pid"
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
        kill "$(cat "$pidf")" || true
        for _ in $(seq 20); do kill -0 "$(cat "$pidf")" 2>/dev/null || break; sleep 0.5; done
    fi
}
if [ "$conf_changed" -eq 1 ]; then
    stop_daemon slurmd
    stop_daemon slurmctld
fi
if ! running slurmctld; then
    log "starting slurmctld"
    slurmctld -f "$CONF" || die "slurmctld failed to start (see $LOG_DIR/slurmctld.log)"
fi
if ! running slurmd; then
    log "starting slurmd"
    slurmd -f "$CONF" || die "slurmd failed to start (see $LOG_DIR/slurmd.log)"
fi

# --- wait until the node is usable ------------------------------------------
for _ in $(seq 60); do
    cluster_ok && break
    state=$(timeout 10 sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null || true)
    case "$state" in
        down*|drain*|fail*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
cluster_ok || die "node $HOST not usable in partition $PARTITION: \
$(sinfo -N -o '%N %P %T %E' 2>&1 | tail -n +2); see $LOG_DIR/slurmctld.log and slurmd.log"

out=$(timeout 60 srun -p "$PARTITION" -n 1 hostname 2>&1) \
    || die "srun -n 1 hostname failed: $out"
log "cluster is up: $(sinfo -h -p "$PARTITION" -o '%P %T %c CPUs %N'); srun ran on $out"
echo "$PARTITION"
