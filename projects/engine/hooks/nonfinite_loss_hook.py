"""Stop a training run whose loss is NaN or Inf.

A single corrupt batch, an fp16 overflow or an absurd learning rate makes a
loss non-finite; one optimizer step with it turns every weight into NaN and
every later checkpoint is garbage. :class:`NonFiniteLossHook` catches it in
the iteration where it happens: after the iteration's ``log_vars`` are known
it raises :class:`NonFiniteLossError` naming the iteration, the epoch and
each non-finite loss term (``loss_inv``/``loss_var``/``loss_cov`` for
VICReg, ``loss_rpn_cls``/``loss_cls``/``loss_bbox``/... for Faster R-CNN)
and the last checkpoint. The hook runs before ``CheckpointHook`` (and EMA,
logging), so no checkpoint is written from the damaged weights: the last
good one is left as it was and ``--resume`` continues from it.

Skipping such steps instead is the optim wrapper's job
(``optim_wrapper = dict(type='NonFiniteSkipOptimWrapper', ...)``,
:mod:`projects.engine.optim`): it decides before the step. The hook then
warns about each skipped step, naming the iteration and the terms, and stops
the run after ``max_consecutive_skips`` skipped steps in a row (e.g. the
weights are already NaN, so every later step would be skipped too).

Cost: none beyond what mmengine already pays. ``RuntimeInfoHook`` copies
every ``log_var`` to the host each iteration (``MessageHub.update_scalar``
calls ``.item()``) and this hook only reads those Python floats.
"""
import logging
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A training loss is NaN or Inf."""


def _as_float(value) -> Optional[float]:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().item())
    return None


def _step_skipped(optim_wrapper) -> bool:
    """Whether a ``NonFiniteSkipMixin`` wrapper (or one of an
    ``OptimWrapperDict``'s) skipped its last step."""
    wrappers = optim_wrapper.values() if hasattr(optim_wrapper, 'values') \
        else [optim_wrapper]
    return any(getattr(w, 'step_skipped', False) for w in wrappers)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Guard against NaN/Inf losses (see the module docstring).

    Registered in mmengine's root ``HOOKS``, so configs of any scope
    (``mmpretrain``, ``mmdet``) find it: ``custom_hooks = [dict(
    type='NonFiniteLossHook')]`` with ``projects.engine`` in
    ``custom_imports``.

    Args:
        max_consecutive_skips (int): with a skipping optim wrapper, stop
            after this many skipped steps in a row. Defaults to 10.
    """

    # Not mmdet's CheckInvalidLossHook: it asserts on the total loss every
    # `interval` (50) iterations only, names no term and is mmdet-only.
    # After RuntimeInfoHook (VERY_HIGH) has put the log_vars in the message
    # hub, before EMAHook (NORMAL), LoggerHook and CheckpointHook (VERY_LOW).
    priority = 'ABOVE_NORMAL'

    def __init__(self, max_consecutive_skips: int = 10) -> None:
        self.max_consecutive_skips = max_consecutive_skips
        self.consecutive_skips = 0
        self.total_skips = 0

    def _nonfinite_terms(self, runner, outputs) -> dict:
        bad = {}
        hub = runner.message_hub
        for key, value in (outputs or {}).items():
            # RuntimeInfoHook has already stored the value as a float.
            buf = hub.log_scalars.get(f'train/{key}')
            v = buf.current() if buf is not None else _as_float(value)
            if v is not None and not math.isfinite(v):
                bad[key] = v
        return bad

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        skipped = _step_skipped(runner.optim_wrapper)
        bad = self._nonfinite_terms(runner, outputs)
        if skipped and not bad:  # another rank's loss was the bad one
            bad = {'loss': float('nan')}
        if not bad:
            self.consecutive_skips = 0
            return
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                 f'batch {batch_idx + 1})')
        if skipped:
            self.consecutive_skips += 1
            self.total_skips += 1
            if self.consecutive_skips <= self.max_consecutive_skips:
                print_log(
                    f'Non-finite loss at {where}: {terms}; skipped this '
                    f'optimizer step ({self.total_skips} skipped so far, '
                    f'{self.consecutive_skips} in a row).',
                    logger='current', level=logging.WARNING)
                return
            why = (f'{self.consecutive_skips} optimizer steps in a row were '
                   f'skipped')
        else:
            why = 'the optimizer step has been taken, so the weights are ' \
                  'no longer trustworthy'
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'Non-finite loss at {where}: {terms}. Training stopped '
            f'({why}); no checkpoint was written from this state. Last '
            f'checkpoint: {last or "none yet"} (use --resume to continue '
            f'from it). Check the data and the learning rate, or set '
            f"optim_wrapper.type='NonFiniteSkipOptimWrapper' to skip such "
            f'steps.')
