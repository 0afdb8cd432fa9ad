"""All-gather whose backward sums gradients over ranks (official VICReg).

mmpretrain's ``GatherLayer`` returns ``grads[rank]`` in backward, i.e. only
this rank's own contribution to the gradient of its embeddings. VICReg's
variance/covariance terms are computed identically on every rank from the
gathered batch, so the gradient w.r.t. rank r's embeddings is the sum over all
ranks of ``d loss_k / d z_r``; without the all-reduce each rank would miss the
terms computed by the others and DDP's average would be 1/world_size too small.
"""
from typing import Tuple

import torch
import torch.distributed as dist
from mmengine.dist import get_rank, get_world_size


class FullGatherLayer(torch.autograd.Function):
    """Gather tensors from all processes and support backward propagation
    for the gradients across processes.

    Same as ``FullGatherLayer`` in facebookresearch/vicreg ``main_vicreg.py``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = x.contiguous()
        output = [torch.zeros_like(x) for _ in range(get_world_size())]
        dist.all_gather(output, x)
        return tuple(output)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        all_gradients = torch.stack(grads)
        dist.all_reduce(all_gradients)  # SUM: every rank used every slice
        return all_gradients[get_rank()]


def batch_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0 (identity when not
    distributed), with gradients summed over ranks in backward."""
    if get_world_size() == 1:
        return x
    return torch.cat(FullGatherLayer.apply(x), dim=0)
