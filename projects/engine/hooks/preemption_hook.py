"""Survive time limits and preemption: checkpoint on a signal, requeue.

The official VICReg code runs under ``submitit`` (``run_with_submitit.py``):
on a time-limit warning it checkpoints and requeues the Slurm job. This hook
does the same inside mmengine's loop, for both stages:

- ``SIGUSR1`` (the warning Slurm sends ``--signal=B:USR1@<seconds>`` before
  the time limit, forwarded by the sbatch templates), ``SIGTERM`` (sent at
  the limit, on ``scancel`` and on preemption) and ``SIGINT`` (Ctrl-C) only
  set a flag; the current iteration finishes;
- after the iteration, all ranks agree (one all-reduce of an integer per
  iteration; on NCCL also a host copy of it, a sync point the logger's
  ``.item()`` calls already impose each iteration) and the run writes
  ``iter_<N>.pth`` through the atomic writer
  (weights, optimizer, schedulers, message hub; a mid-epoch position that
  :class:`~projects.engine.loops.ExactResumeTrainLoop` resumes exactly) and
  points ``last_checkpoint`` at it;
- for ``requeue_signals`` (default ``SIGUSR1``: the time-limit warning, or a
  preemption announced with a signal) in a Slurm job, rank 0 runs
  ``scontrol requeue $SLURM_JOB_ID``; the requeued job runs the same batch
  script, which passes ``--resume``. Where the job cannot be requeued (an
  interactive ``srun`` job: only batch jobs can), it writes
  ``<work_dir>/resume_requested`` instead, which ``tools/slurm_train.sh``
  answers by running again with ``--resume``. ``SIGTERM``/``SIGINT`` do not
  requeue (``scancel`` must stop a job; Slurm requeues a job preempted in
  ``PreemptMode=REQUEUE`` itself);
- every rank then exits with status 0.

At the start of training rank 0 also deletes the temporary files that a
checkpoint write killed half-way left in the work dir
(:func:`projects.compat.atomic_io.remove_orphan_temporaries`).
"""
import logging
import os
import os.path as osp
import signal
import subprocess
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from projects.compat.atomic_io import atomic_write, remove_orphan_temporaries

RESUME_MARKER = 'resume_requested'


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Checkpoint and stop (and requeue on Slurm) on a signal.

    Args:
        signals (Sequence[str]): signals that stop the run after the current
            iteration. Defaults to ``('SIGUSR1', 'SIGTERM', 'SIGINT')``.
        requeue_signals (Sequence[str]): of those, the ones after which a
            Slurm job is requeued. Defaults to ``('SIGUSR1', )``.
        clean_temporaries (bool): delete orphan temporary checkpoint files
            in the work dir at the start. Defaults to True.
    """

    # after NonFiniteLossHook (a NaN step is never checkpointed) and after
    # CheckpointHook (its own save of this iteration comes first)
    priority = 'LOWEST'

    def __init__(self, signals: Sequence[str] = ('SIGUSR1', 'SIGTERM',
                                                 'SIGINT'),
                 requeue_signals: Sequence[str] = ('SIGUSR1', ),
                 clean_temporaries: bool = True) -> None:
        self.signals = [self._signum(s) for s in signals]
        self.requeue_signals = [self._signum(s) for s in requeue_signals]
        self.clean_temporaries = clean_temporaries
        self.received: Optional[int] = None
        self._previous = {}

    @staticmethod
    def _signum(name: str) -> int:
        try:
            return int(getattr(signal, name))
        except AttributeError:
            raise ValueError(f'PreemptionHook: unknown signal {name!r} (use '
                             f"names such as 'SIGUSR1', 'SIGTERM')") from None

    # ------------------------------------------------------------- signals
    def _on_signal(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum  # acted on after the current iteration

    def before_train(self, runner) -> None:
        if get_rank() == 0:
            marker = osp.join(runner.work_dir, RESUME_MARKER)
            if osp.exists(marker):
                os.remove(marker)
            if self.clean_temporaries:
                for path in remove_orphan_temporaries(runner.work_dir):
                    print_log(f'removed {path}, left by a checkpoint write '
                              f'that was killed', logger='current',
                              level=logging.WARNING)
        for signum in self.signals:
            try:
                previous = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread (e.g. some tests)
                print_log('PreemptionHook: not in the main thread, signals '
                          'are not handled', logger='current',
                          level=logging.WARNING)
                break
            self._previous[signum] = previous
            # tools/train.py records a warning that came before training
            early = getattr(previous, 'received', None)
            if early and self.received is None:
                self.received = early[0]

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    # ------------------------------------------------------------ stopping
    def _agreed_signal(self) -> int:
        """The signal any rank received (0: none), the same on all ranks."""
        flag = torch.tensor(self.received or 0, dtype=torch.int64)
        if get_world_size() > 1:
            all_reduce(flag, op='max')
        return int(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        signum = self._agreed_signal()
        if signum:
            self._checkpoint_and_exit(runner, signum)

    def _checkpoint_and_exit(self, runner, signum: int) -> None:
        name = signal.Signals(signum).name
        filename = f'iter_{runner.iter + 1}.pth'
        path = osp.join(runner.work_dir, filename)
        print_log(f'{name} received: saving {path} after iteration '
                  f'{runner.iter + 1} (epoch {runner.epoch + 1})',
                  logger='current')
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False)
        runner.message_hub.update_info('last_ckpt', path)
        if get_rank() == 0:
            atomic_write(path.encode(),
                         osp.join(runner.work_dir, 'last_checkpoint'))
        barrier()  # the checkpoint is complete before anything else
        if get_rank() == 0:
            print_log(self._after_stop(runner, signum, path),
                      logger='current')
        raise SystemExit(0)

    def _after_stop(self, runner, signum: int, path: str) -> str:
        """Requeue the Slurm job or leave the resume marker (rank 0)."""
        if signum not in self.requeue_signals:
            return f'stopped; run again with --resume to continue from {path}'
        job = os.environ.get('SLURM_JOB_ID')
        if job and self._requeue(job):
            return f'requeued Slurm job {job}; it resumes from {path}'
        atomic_write(path.encode(), osp.join(runner.work_dir, RESUME_MARKER))
        why = 'not a Slurm job' if not job else 'scontrol requeue failed'
        return (f'not requeued ({why}); run again with --resume to continue '
                f'from {path}')

    @staticmethod
    def _requeue(job: str) -> bool:
        try:
            res = subprocess.run(['scontrol', 'requeue', job],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print_log(f'scontrol requeue {job} failed: {exc}',
                      logger='current', level=logging.WARNING)
            return False
        if res.returncode < 0:
            # scontrol runs inside the job: the requeue it asked for kills
            # it with the job's other processes (measured on the local
            # cluster); the batch shell requeues again if it did not happen
            return True
        if res.returncode != 0:
            print_log(f'scontrol requeue {job} failed (status '
                      f'{res.returncode}): '
                      f'{(res.stderr or res.stdout).strip()}',
                      logger='current', level=logging.WARNING)
            return False
        return True
