# Sourced by the training sbatch templates (bash). Defines wait_srun: waits
# for the srun started in the background as $srun_pid, passes a time-limit
# warning (SIGUSR1 sent to the batch shell: --signal=B:USR1@N) on to it, and
# exits with srun's status. The training (PreemptionHook) checkpoints and
# requeues the job itself; if the tasks ended non-zero after a warning
# (killed before they could handle it), the job is requeued from here:
# nothing is lost, the next run resumes from the last checkpoint.
warned=0
on_usr1() {
    warned=1
    echo "$(date +%T) USR1: time limit or preemption ahead; asking the tasks to checkpoint"
    kill -USR1 "$srun_pid" 2>/dev/null || true
}
trap on_usr1 USR1

wait_srun() {
    local rc
    set +e
    while :; do
        wait "$srun_pid"
        rc=$?
        kill -0 "$srun_pid" 2>/dev/null || break  # else: woken by the trap
    done
    set -e
    if [ "$warned" = 1 ] && [ "$rc" -ne 0 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        echo "tasks ended with status $rc after the warning: requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID" || true
    fi
    exit "$rc"
}
