#!/usr/bin/env bash
# Usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Env: GPUS (8), GPUS_PER_NODE (min(GPUS, 8)), CPUS_PER_TASK (5), SRUN_ARGS.
# GPUS is the number of tasks (one process per GPU); with GPUS_PER_NODE=0
# no GPU is requested (CPU/gloo runs, e.g. the local test cluster).
# Time limits: srun sends USR1 SIGNAL_SECONDS (120) before the job's limit
# (e.g. SRUN_ARGS=--time=60); the training checkpoints after its current
# iteration and stops. An srun job cannot be requeued, so with AUTO_RESUME=1
# (default) this script starts a new one with --resume while the training
# asks for it (<WORK_DIR>/resume_requested, written by PreemptionHook).
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
SIGNAL_SECONDS=${SIGNAL_SECONDS:-120}
AUTO_RESUME=${AUTO_RESUME:-1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GRES=""
if [ "$GPUS_PER_NODE" -gt 0 ]; then GRES="--gres=gpu:${GPUS_PER_NODE}"; fi
TASKS_PER_NODE=$(( GPUS_PER_NODE > 0 ? GPUS_PER_NODE : GPUS ))

RESUME=()
while :; do
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    $GRES \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${TASKS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    --signal="USR1@${SIGNAL_SECONDS}" \
    ${SRUN_ARGS} \
    python -u "$ROOT/tools/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" --launcher="slurm" "${@:5}" "${RESUME[@]}"
    rc=$?
    if [ "$AUTO_RESUME" = 1 ] && [ -f "${WORK_DIR}/resume_requested" ]; then
        echo "stopped before the time limit; resuming in a new job"
        RESUME=(--resume)
        continue
    fi
    exit $rc
done
