"""Training-loop safeguards shared by the MMPretrain and MMDetection configs.

- :mod:`.hooks`: :class:`NonFiniteLossHook` stops (or skips) a step whose
  loss is NaN/Inf, before a checkpoint is written from it;
  :class:`ChannelsLastHook` converts the model to NHWC.
- :mod:`.hooks.preemption_hook`: :class:`PreemptionHook` checkpoints and
  stops (and requeues a Slurm job) on a time-limit warning or SIGTERM/SIGINT.
- :mod:`.loops.exact_resume_loop`: :class:`ExactResumeTrainLoop`, an
  epoch-based loop whose resumed runs end bit for bit where uninterrupted
  ones would.

Hooks are registered in mmengine's root registry, which the ``mmpretrain``
and ``mmdet`` child registries fall back to.
"""
from .. import compat  # noqa: F401  (compatibility fixes first)
from .hooks import (ChannelsLastHook, NonFiniteLossError, NonFiniteLossHook,
                    PreemptionHook)
from .loops import ExactResumeTrainLoop

__all__ = [
    'NonFiniteLossHook', 'NonFiniteLossError', 'ChannelsLastHook',
    'PreemptionHook', 'ExactResumeTrainLoop'
]
