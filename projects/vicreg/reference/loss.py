"""The loss of ``main_vicreg.py`` ``VICReg.forward``, split into its terms."""
from typing import Dict

import torch
import torch.nn.functional as F


def off_diagonal(x: torch.Tensor) -> torch.Tensor:
    """Flattened off-diagonal elements of a square matrix (official code)."""
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def official_loss_terms(x: torch.Tensor, y: torch.Tensor, sim: float = 25.0,
                        std: float = 25.0,
                        cov: float = 1.0) -> Dict[str, torch.Tensor]:
    """Weighted invariance, variance and covariance terms of one process's
    embeddings (the official code gathers first; its sum is the loss)."""
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(
        F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(
        num_features) + off_diagonal(cov_y).pow_(2).sum().div(num_features)
    return dict(loss_inv=sim * repr_loss, loss_var=std * std_loss,
                loss_cov=cov * cov_loss)
