from typing import Dict

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils import batch_all_gather


def off_diagonal(x: torch.Tensor) -> torch.Tensor:
    """Flattened view of the off-diagonal elements of a square matrix."""
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


@MODELS.register_module()
class VICRegLoss(BaseModule):
    r"""Variance-Invariance-Covariance loss.

    Implementation of `VICReg: Variance-Invariance-Covariance Regularization
    for Self-Supervised Learning <https://arxiv.org/abs/2105.04906>`_
    (Bardes, Ponce & LeCun, ICLR 2022), term by term as ``VICReg.forward`` in
    `main_vicreg.py <https://github.com/facebookresearch/vicreg>`_.

    For embeddings :math:`Z, Z' \in \mathbb{R}^{N \times D}` of two views:

    .. math::

        s(Z, Z') &= \frac{1}{N_{loc} D} \sum_i \lVert z_i - z'_i \rVert_2^2
            \quad \text{(this rank's batch only)} \\
        v(Z) &= \frac{1}{D} \sum_j \max\bigl(0,
            1 - \sqrt{\mathrm{Var}(z^j) + \epsilon}\bigr) \\
        C(Z) &= \frac{1}{N - 1} (Z - \bar Z)^\top (Z - \bar Z), \qquad
        c(Z) = \frac{1}{D} \sum_{j \ne k} C(Z)_{jk}^2 \\
        \mathcal{L} &= \lambda\, s(Z, Z')
            + \mu\, \tfrac{1}{2} \bigl[v(Z) + v(Z')\bigr]
            + \nu\, \bigl[c(Z) + c(Z')\bigr]

    where :math:`v` and :math:`c` use the batch gathered from all ranks
    (:math:`N = N_{global}`, unbiased variance), :math:`\epsilon = 10^{-4}`
    and :math:`\lambda = \mu = 25, \nu = 1` by default.

    Args:
        sim_coeff (float): :math:`\lambda`, invariance weight. Defaults to 25.
        std_coeff (float): :math:`\mu`, variance weight. Defaults to 25.
        cov_coeff (float): :math:`\nu`, covariance weight. Defaults to 1.
        eps (float): Added to the variance before the sqrt. Defaults to 1e-4.
    """

    def __init__(self,
                 sim_coeff: float = 25.0,
                 std_coeff: float = 25.0,
                 cov_coeff: float = 1.0,
                 eps: float = 1e-4) -> None:
        super().__init__()
        self.sim_coeff = sim_coeff
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.eps = eps

    def forward(self, z_a: torch.Tensor,
                z_b: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Compute the three weighted terms.

        Args:
            z_a (torch.Tensor): N_loc x D embeddings of the first view.
            z_b (torch.Tensor): N_loc x D embeddings of the second view.

        Returns:
            Dict[str, torch.Tensor]: ``loss_inv``, ``loss_var`` and
            ``loss_cov``, each already multiplied by its coefficient.
        """
        # At least fp32 (AMP gives fp16) for the element-wise parts: mse,
        # mean, var, sqrt(var + 1e-4), pow and the sums over the 8192 x
        # 8192 covariance run in fp32. The covariance matmuls z.T @ z do
        # NOT: autocast casts matmul inputs to half precision whatever their
        # dtype (as in the official code), and its fp16/bf16 result is
        # promoted back to fp32 by the division/pow that follow.
        dtype = torch.promote_types(z_a.dtype, torch.float32)
        z_a, z_b = z_a.to(dtype), z_b.to(dtype)
        num_features = z_a.size(1)

        repr_loss = F.mse_loss(z_a, z_b)

        z_a = batch_all_gather(z_a)
        z_b = batch_all_gather(z_b)
        z_a = z_a - z_a.mean(dim=0)
        z_b = z_b - z_b.mean(dim=0)

        std_a = torch.sqrt(z_a.var(dim=0) + self.eps)
        std_b = torch.sqrt(z_b.var(dim=0) + self.eps)
        std_loss = torch.mean(F.relu(1 - std_a)) / 2 + \
            torch.mean(F.relu(1 - std_b)) / 2

        n = z_a.size(0)
        if n < 2:
            raise ValueError('VICRegLoss needs >= 2 samples in the global '
                             'batch (variance and covariance are undefined)')
        cov_a = (z_a.T @ z_a) / (n - 1)
        cov_b = (z_b.T @ z_b) / (n - 1)
        cov_loss = off_diagonal(cov_a).pow(2).sum().div(num_features) + \
            off_diagonal(cov_b).pow(2).sum().div(num_features)

        return dict(
            loss_inv=self.sim_coeff * repr_loss,
            loss_var=self.std_coeff * std_loss,
            loss_cov=self.cov_coeff * cov_loss)
