"""Optim wrappers that skip the optimizer step of a non-finite loss.

Skipping is the optim wrapper's job: it owns ``update_params`` (backward,
step, zero_grad), and mmengine calls its ``optim_context(model)`` around the
forward pass, before any BatchNorm running statistic changes. Enable it with
``optim_wrapper = dict(type='NonFiniteSkipOptimWrapper', ...)`` (or
``'NonFiniteSkipAmpOptimWrapper'`` in place of ``'AmpOptimWrapper'``); an
own wrapper type gets the behaviour by listing :class:`NonFiniteSkipMixin`
before its base. :class:`~projects.engine.NonFiniteLossHook` reports each
skipped step and stops the run after ``max_consecutive_skips`` in a row.

Cost: one scalar ``isfinite(loss)`` read per iteration (one host sync on GPU,
as ``torch.cuda.amp.GradScaler`` does for its inf check; under DDP plus one
all-reduce of that flag so that all ranks skip together) and a device-side
copy of the model's buffers (BatchNorm statistics, batch counters) per
iteration.
"""
from contextlib import contextmanager
from typing import List, Tuple

import torch
import torch.distributed as dist
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


class NonFiniteSkipMixin:
    """Skip ``update_params`` when the loss is NaN/Inf on any rank.

    A skipped step takes no backward and no optimizer step, zeroes the
    gradients and puts the model's buffers back to their values before the
    forward pass (a NaN forward has already written BatchNorm's running
    mean/var and advanced ``num_batches_tracked``). ``step_skipped`` tells
    whether the last ``update_params`` was skipped; ``skipped_steps``
    counts them. With gradient accumulation the gradients accumulated so
    far are dropped with the bad batch's.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_skipped = False
        self.skipped_steps = 0
        self._saved_buffers: List[Tuple[torch.Tensor, torch.Tensor]] = []

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        # mmengine runs the forward pass (and the data preprocessor) inside
        # this context: the last moment the buffers are still clean. A
        # device-side copy, no sync, a few MB at most.
        self._saved_buffers = [(b, b.detach().clone())
                               for b in model.buffers()]
        with super().optim_context(model):
            yield

    def update_params(self, loss: torch.Tensor, *args, **kwargs) -> None:
        self.step_skipped = not self._finite_everywhere(loss)
        if not self.step_skipped:
            return super().update_params(loss, *args, **kwargs)
        self.skipped_steps += 1
        self.zero_grad()
        with torch.no_grad():
            for buf, saved in self._saved_buffers:
                buf.copy_(saved)
        return None

    @staticmethod
    def _finite_everywhere(loss: torch.Tensor) -> bool:
        finite = torch.isfinite(loss.detach()).all().to(torch.float32)
        if dist.is_available() and dist.is_initialized():
            # every rank must skip together, or DDP's backward all-reduce
            # would wait forever for the rank that skipped
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(NonFiniteSkipMixin, OptimWrapper):
    """``OptimWrapper`` that skips steps with a NaN/Inf loss (see
    :class:`NonFiniteSkipMixin`)."""


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipAmpOptimWrapper(NonFiniteSkipMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips steps with a NaN/Inf loss (see
    :class:`NonFiniteSkipMixin`). The check is on the unscaled loss, before
    the ``GradScaler``, whose own inf check still guards the gradients."""
