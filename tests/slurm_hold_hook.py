"""Test-only hook for the Slurm time-limit tests (tests/tools/test_slurm_time_limit.py).

Slurm sends the time-limit warning at one of its periodic checks (every 30 s
here), so a short training may end before it or long after it depending on
the machine: two of these tests once finished before the warning on a quiet
machine, and a sized-up run was still too short in CI. With
this hook the first run of a job waits, before iteration ``at_iter``, until
PreemptionHook has a signal: the warning always lands mid-training, however
fast the machine. Waiting changes no state (weights, RNG, data order), so
the final weights still equal an uninterrupted run's. It holds only where the
test asks for it (env ``SLURM_TEST_HOLD=1``, set for the Slurm job, not for
the reference run) and only in a run that starts from the beginning (the
requeued run resumes and goes straight on).
"""
import os
import time

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS


@HOOKS.register_module()
class HoldUntilWarnedHook(Hook):

    def __init__(self, at_iter: int = 2, timeout: float = 300) -> None:
        self.at_iter = at_iter
        self.timeout = timeout
        self.fresh = False

    def before_train(self, runner) -> None:
        self.fresh = runner.iter == 0  # resumed runs are past iteration 0

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not (self.fresh and runner.iter == self.at_iter
                and os.environ.get('SLURM_TEST_HOLD') == '1'):
            return
        preemption = [h for h in runner.hooks
                      if type(h).__name__ == 'PreemptionHook']
        assert preemption, 'HoldUntilWarnedHook needs a PreemptionHook'
        print_log(f'holding before iteration {self.at_iter + 1} for the '
                  f'time-limit warning', logger='current')
        start = time.monotonic()
        while (preemption[0].received is None
               and time.monotonic() - start < self.timeout):
            time.sleep(0.2)
        print_log(f'held {time.monotonic() - start:.0f} s, signal '
                  f'{preemption[0].received}', logger='current')
