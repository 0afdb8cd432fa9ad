# Sourced by the training sbatch templates (bash). Defines wait_srun: waits
# for the srun started in the background as $srun_pid, passes a time-limit
# warning (SIGUSR1 sent to the batch shell: --signal=B:USR1@N) on to the
# tasks (scancel --signal, which signals the job steps only), and exits with
# srun's status. The training (PreemptionHook) checkpoints and
# requeues the job itself; if the tasks ended non-zero after a warning
# (killed before they could handle it), the job is requeued from here:
# nothing is lost, the next run resumes from the last checkpoint.
warned=0
on_usr1() {
    warned=1
    echo "$(date +%T) USR1: time limit or preemption ahead; asking the tasks to checkpoint"
    # to the job steps' tasks directly (not through srun: an srun that is
    # shutting down dies of USR1, and its status would look like a failure)
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        scancel --signal=USR1 "$SLURM_JOB_ID" 2>/dev/null \
            || kill -USR1 "$srun_pid" 2>/dev/null || true
    else
        kill -USR1 "$srun_pid" 2>/dev/null || true
    fi
}
trap on_usr1 USR1

wait_srun() {
    local rc again
    set +e
    while :; do
        wait "$srun_pid"
        rc=$?
        [ "$rc" -le 128 ] && break
        # > 128: woken by the trap (srun still running), or srun ended just
        # then; a second wait returns srun's own status (127: none left)
        kill -0 "$srun_pid" 2>/dev/null && continue
        wait "$srun_pid" 2>/dev/null
        again=$?
        [ "$again" -ne 127 ] && rc=$again
        break
    done
    set -e
    if [ "$warned" = 1 ] && [ "$rc" -ne 0 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        echo "tasks ended with status $rc after the warning: requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID" || true
    fi
    exit "$rc"
}
