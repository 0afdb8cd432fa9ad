"""Stop (or skip) a training step whose loss is NaN or Inf.

A single corrupt batch, an fp16 overflow or an absurd learning rate makes a
loss non-finite; one optimizer step with it turns every weight into NaN and
every later checkpoint is garbage. :class:`NonFiniteLossHook` catches it in
the iteration where it happens:

- ``mode='stop'`` (default): after the iteration's ``log_vars`` are known it
  raises :class:`NonFiniteLossError` naming the iteration, the epoch and each
  non-finite loss term (``loss_inv``/``loss_var``/``loss_cov`` for VICReg,
  ``loss_rpn_cls``/``loss_cls``/``loss_bbox``/... for Faster R-CNN) and the
  last checkpoint. The hook runs before ``CheckpointHook`` (and EMA, logging),
  so no checkpoint is written from the damaged weights: the last good one is
  left as it was and ``--resume`` continues from it.
- ``mode='skip'``: the optimizer step of a batch whose total loss is not
  finite is not taken (no backward, no step; gradients zeroed; BatchNorm
  running statistics put back to their values before the batch); a warning
  names the iteration and terms. After ``max_consecutive_skips`` skipped
  steps in a row the run stops as in ``'stop'`` mode (e.g. the weights are
  already NaN, so every later step would be skipped too).

Cost: ``'stop'`` adds no device synchronisation: mmengine's
``RuntimeInfoHook`` already copies every ``log_var`` to the host each
iteration (``MessageHub.update_scalar`` calls ``.item()``), and this hook only
reads those Python floats. ``'skip'`` must decide before the step, so it adds
one scalar ``isfinite(loss)`` read per iteration (one host sync on GPU, as
``torch.cuda.amp.GradScaler`` does for its inf check; under DDP plus one
all-reduce of that flag so all ranks skip together) and a device-side copy
of the buffers (BatchNorm statistics and batch counters) per iteration.
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


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Guard against NaN/Inf losses (see the module docstring).

    Registered in mmengine's root ``HOOKS``, so configs of any scope
    (``mmpretrain``, ``mmdet``) find it: ``custom_hooks = [dict(
    type='NonFiniteLossHook')]`` with ``projects.engine`` in
    ``custom_imports``.

    Args:
        mode (str): ``'stop'`` or ``'skip'``. Defaults to ``'stop'``.
        max_consecutive_skips (int): in ``'skip'`` mode, stop after this
            many skipped steps in a row. Defaults to 10.
    """

    # Not mmdet's CheckInvalidLossHook: it asserts on the total loss every
    # `interval` (50) iterations only, names no term and is mmdet-only.
    # After RuntimeInfoHook (VERY_HIGH) has put the log_vars in the message
    # hub, before EMAHook (NORMAL), LoggerHook and CheckpointHook (VERY_LOW).
    priority = 'ABOVE_NORMAL'

    def __init__(self, mode: str = 'stop',
                 max_consecutive_skips: int = 10) -> None:
        if mode not in ('stop', 'skip'):
            raise ValueError(f"NonFiniteLossHook mode must be 'stop' or "
                             f"'skip', not {mode!r}")
        self.mode = mode
        self.max_consecutive_skips = max_consecutive_skips
        self.consecutive_skips = 0
        self.total_skips = 0
        self._skipped_this_iter = False

    # ------------------------------------------------------------ skip mode
    def before_train(self, runner) -> None:
        if self.mode != 'skip':
            return
        wrapper = runner.optim_wrapper
        if getattr(wrapper, '_nonfinite_guarded', False):
            return
        original = wrapper.update_params

        def update_params(loss, *args, **kwargs):
            if self._finite_everywhere(loss):
                return original(loss, *args, **kwargs)
            self._skipped_this_iter = True
            wrapper.zero_grad()
            self._restore_buffers()
            return None

        wrapper.update_params = update_params
        wrapper._nonfinite_guarded = True

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.mode != 'skip':
            return
        # The forward pass of a bad batch also updates BatchNorm running
        # statistics; keep a device-side copy (no sync, a few MB at most)
        # to put back if the step is skipped.
        model = getattr(runner.model, 'module', runner.model)
        # (num_batches_tracked too: BatchNorm with momentum=None uses it)
        self._buffers = [(b, b.detach().clone()) for b in model.buffers()]

    def _restore_buffers(self) -> None:
        with torch.no_grad():
            for buf, saved in getattr(self, '_buffers', ()):
                buf.copy_(saved)

    @staticmethod
    def _finite_everywhere(loss: torch.Tensor) -> bool:
        finite = torch.isfinite(loss.detach()).all().to(torch.float32)
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            # every rank must skip together, or DDP's backward all-reduce
            # would wait forever for the rank that skipped
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())

    # ------------------------------------------------------------- checking
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
        skipped, self._skipped_this_iter = self._skipped_this_iter, False
        bad = self._nonfinite_terms(runner, outputs)
        if skipped and not bad:
            bad = {'loss': float('nan')}
        if not bad:
            self.consecutive_skips = 0
            return
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                 f'batch {batch_idx + 1})')
        if self.mode == 'skip' and skipped:
            self.consecutive_skips += 1
            self.total_skips += 1
            if self.consecutive_skips <= self.max_consecutive_skips:
                print_log(
                    f'Non-finite loss at {where}: {terms}; skipped this '
                    f'optimizer step ({self.total_skips} skipped so far, '
                    f'{self.consecutive_skips} in a row).',
                    logger='current', level=logging.WARNING)
                return
        last = runner.message_hub.get_info('last_ckpt')
        if self.mode == 'skip' and skipped:
            why = (f'{self.consecutive_skips} optimizer steps in a row were '
                   f'skipped')
        else:
            why = 'the optimizer step has been taken, so the weights are ' \
                  'no longer trustworthy'
        raise NonFiniteLossError(
            f'Non-finite loss at {where}: {terms}. Training stopped '
            f'({why}); no checkpoint was written from this state. Last '
            f'checkpoint: {last or "none yet"} (use --resume to continue '
            f'from it). Check the data and the learning rate, or use '
            f"NonFiniteLossHook(mode='skip') to skip such steps.")
