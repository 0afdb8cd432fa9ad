from typing import Callable, Iterable, List, Optional

import torch
from mmpretrain.registry import OPTIMIZERS
from torch.optim.optimizer import Optimizer


@OPTIMIZERS.register_module()
class VICRegLARS(Optimizer):
    r"""LARS exactly as in the official VICReg code.

    Implementation of the ``LARS`` class of `main_vicreg.py
    <https://github.com/facebookresearch/vicreg/blob/main/main_vicreg.py>`_
    used for `VICReg <https://arxiv.org/abs/2105.04906>`_ (You et al.,
    `LARS <https://arxiv.org/abs/1708.03888>`_). For a parameter :math:`p`
    with gradient :math:`g`:

    .. math::

        d &= g + \mathrm{wd}\, p \\
        q &= \begin{cases} \eta \lVert p\rVert / \lVert d\rVert
             & \lVert p\rVert > 0 \text{ and } \lVert d\rVert > 0 \\
             1 & \text{otherwise} \end{cases} \\
        \mu &\leftarrow m\, \mu + q\, d, \qquad p \leftarrow p - lr\, \mu

    Parameters with ``ndim == 1`` (biases, norm weights) skip both the weight
    decay and the trust ratio (official ``exclude_bias_and_norm``), i.e.
    :math:`\mu \leftarrow m\,\mu + g`. Registered under its own name because
    mmpretrain's ``LARS`` differs (``lars_exclude`` via paramwise_cfg, eps,
    dampening, nesterov, and weight decay of excluded params).

    The step is built from ``torch._foreach_*`` and ``torch.where`` on
    tensors: no ``.item()``, no host synchronisation.

    Args:
        params (Iterable): Parameters or param groups.
        lr (float): Learning rate (set every iteration by the scheduler).
        weight_decay (float): Weight decay. Defaults to 1e-6.
        momentum (float): Momentum. Defaults to 0.9.
        eta (float): Trust coefficient. Defaults to 0.001.
        exclude_1d (bool): Exclude ndim==1 params from weight decay and trust
            ratio. Defaults to True.
    """

    def __init__(self,
                 params: Iterable,
                 lr: float,
                 weight_decay: float = 1e-6,
                 momentum: float = 0.9,
                 eta: float = 0.001,
                 exclude_1d: bool = True) -> None:
        if lr < 0.0:
            raise ValueError(f'Invalid learning rate: {lr}')
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            eta=eta,
            exclude_1d=exclude_1d)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        """Perform a single optimization step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        adapt: List[List[torch.Tensor]] = [[], [], []]  # params, grads, mu
        plain: List[List[torch.Tensor]] = [[], [], []]
        for p in group['params']:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError('VICRegLARS does not support sparse grads')
            state = self.state[p]
            if 'mu' not in state:
                state['mu'] = torch.zeros_like(p)
            target = plain if group['exclude_1d'] and p.ndim == 1 else adapt
            target[0].append(p)
            target[1].append(p.grad)
            target[2].append(state['mu'])

        updates = list(plain[1])  # excluded params: dp = grad
        if adapt[0]:
            dps = torch._foreach_add(adapt[1], adapt[0],
                                     alpha=group['weight_decay'])
            param_norm = torch.stack(torch._foreach_norm(adapt[0]))
            update_norm = torch.stack(torch._foreach_norm(dps))
            one = torch.ones_like(param_norm)
            q = torch.where(
                param_norm > 0.0,
                torch.where(update_norm > 0,
                            group['eta'] * param_norm / update_norm, one),
                one)
            torch._foreach_mul_(dps, list(q.unbind()))
            updates += list(dps)
        params = plain[0] + adapt[0]
        mus = plain[2] + adapt[2]
        if not params:
            return
        torch._foreach_mul_(mus, group['momentum'])
        torch._foreach_add_(mus, updates)
        torch._foreach_add_(params, mus, alpha=-group['lr'])
