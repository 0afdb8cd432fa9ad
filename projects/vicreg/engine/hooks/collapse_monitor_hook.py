import logging
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


def embedding_stats(z: torch.Tensor, eps: float = 1e-7) -> Dict[str, float]:
    """Collapse statistics of an N x D embedding matrix.

    - ``emb_std``: mean over dimensions of the per-dimension std (VICReg's
      variance term pushes it to >= 1; ~0 means complete collapse).
    - ``rankme``: RankMe effective rank (Garrido et al., ICML 2023,
      https://arxiv.org/abs/2210.02885), ``exp(H(p))`` with
      ``p = sigma / sum(sigma)`` over the singular values of ``z``; ~1
      means all embeddings lie on a line (dimensional collapse).
    - ``rankme_ratio``: ``rankme / min(N, D)``, comparable across batch
      sizes and widths.
    """
    z = z.detach().float()
    std = z.std(dim=0).mean()
    sigma = torch.linalg.svdvals(z)
    p = sigma / (sigma.sum() + eps) + eps
    rankme = torch.exp(-(p * p.log()).sum())
    return dict(
        emb_std=std.item(),
        rankme=rankme.item(),
        rankme_ratio=rankme.item() / min(z.shape))


@HOOKS.register_module()
class CollapseMonitorHook(Hook):
    """Log embedding collapse statistics and warn when they signal collapse.

    Every ``interval`` training iterations it reads the model's
    ``last_embeddings`` (both views of this rank's last batch, see
    :class:`VICReg`), computes :func:`embedding_stats` on them and writes
    ``train/emb_std``, ``train/rankme`` and ``train/rankme_ratio`` to the
    message hub, so they appear in the text and json logs. Local batch only:
    no communication, and an SVD of (2N x D) is cheap next to a step.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 50.
        std_threshold (float): Warn if ``emb_std`` drops below it.
            Defaults to 0.1 (VICReg targets 1).
        rank_ratio_threshold (float): Warn if ``rankme_ratio`` drops below
            it. Defaults to 0.05.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) in the same iter

    def __init__(self,
                 interval: int = 50,
                 std_threshold: float = 0.1,
                 rank_ratio_threshold: float = 0.05) -> None:
        self.interval = interval
        self.std_threshold = std_threshold
        self.rank_ratio_threshold = rank_ratio_threshold

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        embeddings: Optional[Sequence[torch.Tensor]] = getattr(
            model, 'last_embeddings', None)
        if embeddings is None:
            return
        stats = embedding_stats(torch.cat(list(embeddings), dim=0))
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'train/{key}', value)
        if stats['emb_std'] < self.std_threshold or \
                stats['rankme_ratio'] < self.rank_ratio_threshold:
            print_log(
                f'Possible representation collapse at iter {runner.iter + 1}:'
                f' embedding std {stats["emb_std"]:.4f} (warn < '
                f'{self.std_threshold}), RankMe {stats["rankme"]:.1f} = '
                f'{stats["rankme_ratio"]:.3f} of full rank (warn < '
                f'{self.rank_ratio_threshold}).',
                logger='current',
                level=logging.WARNING)
