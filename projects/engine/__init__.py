"""Training-loop safeguards shared by the MMPretrain and MMDetection configs.

- :mod:`.hooks`: :class:`NonFiniteLossHook` stops a run whose loss is
  NaN/Inf, before a checkpoint is written from it (and reports the steps a
  skipping optim wrapper left out); :class:`ChannelsLastHook` converts the
  model to NHWC.
- :mod:`.optim`: :class:`NonFiniteSkipOptimWrapper` and
  :class:`NonFiniteSkipAmpOptimWrapper` skip the optimizer step of a
  NaN/Inf loss; :class:`NonFiniteSkipMixin` gives it to other wrappers.
- :mod:`.hooks.preemption_hook`: :class:`PreemptionHook` checkpoints and
  stops (and requeues a Slurm job) on a time-limit warning or SIGTERM/SIGINT.
- :mod:`.loops.exact_resume_loop`: :class:`ExactResumeTrainLoop`, an
  epoch-based loop whose resumed runs end bit for bit where uninterrupted
  ones would.

Hooks, loops and optim wrappers are registered in mmengine's root
registries, which the ``mmpretrain`` and ``mmdet`` child registries fall
back to.
"""
from .. import compat  # noqa: F401  (compatibility fixes first)
from .hooks import (ChannelsLastHook, NonFiniteLossError, NonFiniteLossHook,
                    PreemptionHook)
from .loops import ExactResumeTrainLoop
from .optim import (NonFiniteSkipAmpOptimWrapper, NonFiniteSkipMixin,
                    NonFiniteSkipOptimWrapper)

__all__ = [
    'NonFiniteLossHook', 'NonFiniteLossError', 'ChannelsLastHook',
    'PreemptionHook', 'ExactResumeTrainLoop', 'NonFiniteSkipMixin',
    'NonFiniteSkipOptimWrapper', 'NonFiniteSkipAmpOptimWrapper'
]
