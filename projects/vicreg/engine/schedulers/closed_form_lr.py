"""Closed-form LR schedulers reproducing VICReg's ``adjust_learning_rate``.

The official schedule (``main_vicreg.py``) is, per iteration ``step``::

    lr = base_lr * step / warmup_steps                   if step < warmup
    lr = base_lr * q + 0.001 * base_lr * (1 - q)         otherwise,
         q = 0.5 * (1 + cos(pi * (step - warmup) / (max_steps - warmup)))

mmengine's ``LinearLR`` cannot express the warmup exactly: its value is
chained multiplicatively from the previous one, so ``start_factor=0`` makes
the second step divide by zero, and it reaches ``end_factor`` at
``end - 1`` (slope 1/(W-1), not 1/W). ``CosineAnnealingLR`` is also chained:
it starts from whatever lr the warmup left, so it would inherit that offset.
These subclasses compute the value from ``base_values`` and ``last_step``
directly and keep mmengine's config interface (``by_epoch``,
``convert_to_iter_based``, ``begin``/``end``, ``eta_min_ratio``).

Like the official schedule, which is a pure function of the step and the
command line, resuming restores only the progress (step counters); the
shape (begin, end, base lr) comes from the current config, so a run resumed
with a larger ``max_epochs`` anneals to its new end.
"""
import math

from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
from mmengine.optim.scheduler.param_scheduler import INF
from mmpretrain.registry import PARAM_SCHEDULERS


class _ClosedFormMixin:
    _progress_keys = ('last_step', '_global_step')

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the step counters only, then set this step's value."""
        for key in self._progress_keys:
            setattr(self, key, state_dict[key])
        if self.begin <= self._global_step < self.end:
            for group, value in zip(self.optimizer.param_groups,
                                    self._get_value()):
                group[self.param_name] = value


@PARAM_SCHEDULERS.register_module()
class ClosedFormLinearLR(_ClosedFormMixin, LinearLR):
    """Linear lr from ``start_factor * base`` at ``begin`` to
    ``end_factor * base`` at ``end`` (reached by the next scheduler), in
    closed form so ``start_factor=0`` gives exactly 0 at step 0.

    Used for the `VICReg <https://arxiv.org/abs/2105.04906>`_ warmup.
    """

    def _get_value(self) -> list:
        progress = self.last_step / (self.end - self.begin)
        factor = self.start_factor + \
            (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class ClosedFormCosineAnnealingLR(_ClosedFormMixin, CosineAnnealingLR):
    """Cosine annealing from ``base`` to ``eta_min`` (or
    ``eta_min_ratio * base``) over ``T_max`` steps, in closed form
    (independent of the lr the previous scheduler left).

    Used for the `VICReg <https://arxiv.org/abs/2105.04906>`_ decay. A run
    that ends before ``begin`` (shorter than the warmup) never reaches it,
    as in the official code; mmengine would reject ``end <= begin``.
    """

    def __init__(self, optimizer, *args, begin: int = 0, end: int = INF,
                 **kwargs) -> None:
        super().__init__(
            optimizer, *args, begin=begin, end=max(end, begin + 1), **kwargs)

    def _get_value(self) -> list:
        q = 0.5 * (1 + math.cos(math.pi * self.last_step / self.T_max))
        values = []
        for base in self.base_values:
            eta_min = self.eta_min if self.eta_min_ratio is None \
                else base * self.eta_min_ratio
            values.append(base * q + eta_min * (1 - q))
        return values
