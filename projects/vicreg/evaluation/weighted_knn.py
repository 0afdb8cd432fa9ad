"""Weighted k-nearest-neighbour classification of L2-normalised features.

The non-parametric classifier of Wu et al., "Unsupervised Feature Learning
via Non-Parametric Instance Discrimination" (CVPR 2018), as DINO evaluates
with it (Caron et al., ICCV 2021, ``eval_knn.py``): the ``k`` training
features most cosine-similar to a query vote for their labels with weight
``exp(similarity / T)``; classes are ranked by their summed votes.
"""
from typing import Dict

import torch


@torch.no_grad()
def weighted_knn_scores(train_feats: torch.Tensor, train_labels: torch.Tensor,
                        query_feats: torch.Tensor, num_classes: int,
                        k: int = 20, temperature: float = 0.07,
                        chunk: int = 1024) -> torch.Tensor:
    """Per-class vote of every query, shape ``(num_queries, num_classes)``.

    Args:
        train_feats: ``(N, D)`` L2-normalised training features.
        train_labels: ``(N,)`` integer labels in ``[0, num_classes)``.
        query_feats: ``(M, D)`` L2-normalised features to classify.
        k: neighbours (``min(k, N)`` are used).
        temperature: ``T`` of the ``exp(sim / T)`` vote weight.
        chunk: queries per similarity block (bounds memory at ``chunk * N``).
    """
    if train_feats.shape[0] == 0:
        raise ValueError('kNN: the training feature bank is empty')
    k = min(k, train_feats.shape[0])
    train_feats = train_feats.float()
    scores = []
    for start in range(0, query_feats.shape[0], chunk):
        sim = query_feats[start:start + chunk].float() @ train_feats.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, dtype=torch.float64,
                            device=sim.device)
        # float64 sums: the ranking must not depend on summation order
        votes.scatter_add_(1, train_labels[top_idx],
                           (top_sim.double() / temperature).exp())
        scores.append(votes)
    if not scores:
        return torch.zeros(0, num_classes, dtype=torch.float64)
    return torch.cat(scores)


def top_n_correct(scores: torch.Tensor, labels: torch.Tensor,
                  n: int = 1) -> torch.Tensor:
    """Per query: is the true class among the top ``n`` (bool)?

    Right when the true class received a vote and fewer than ``n`` classes
    received strictly more, so a sort's tie-breaking does not matter.
    """
    if scores.shape[0] == 0:
        raise ValueError('kNN: no query features to score')
    labels = labels.to(scores.device)
    true = scores.gather(1, labels[:, None])
    rank = (scores > true).sum(1)
    return (true[:, 0] > 0) & (rank < n)


def knn_accuracy(scores: torch.Tensor,
                 labels: torch.Tensor) -> Dict[str, float]:
    """top-1, top-5 and mean per-class top-1 accuracy, in percent.

    A query is right at top-``n`` as :func:`top_n_correct` decides.
    ``mean_class`` averages the top-1
    accuracy over the classes present in ``labels``.
    """
    top1 = top_n_correct(scores, labels, 1)
    top5 = top_n_correct(scores, labels, 5)
    labels = labels.to(scores.device)
    per_class = [top1[labels == c].double().mean()
                 for c in labels.unique()]
    return dict(
        top1=100.0 * top1.double().mean().item(),
        top5=100.0 * top5.double().mean().item(),
        mean_class=100.0 * torch.stack(per_class).mean().item())
