from typing import Dict, List, Optional, Tuple

import torch
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class VICReg(BaseSelfSupervisor):
    """VICReg.

    Implementation of `VICReg: Variance-Invariance-Covariance Regularization
    for Self-Supervised Learning <https://arxiv.org/abs/2105.04906>`_.
    Follows `main_vicreg.py
    <https://github.com/facebookresearch/vicreg/blob/main/main_vicreg.py>`_:
    backbone -> expander (the ``neck``; 2048-8192-8192-8192 for ResNet-50)
    on each view separately, then the VICReg criterion (the ``head``).

    The last batch's embeddings are kept (detached) in
    :attr:`last_embeddings` for :class:`CollapseMonitorHook`.
    """

    last_embeddings: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The forward function in training.

        Args:
            inputs (List[torch.Tensor]): The two views, each NxCxHxW.
            data_samples (List[DataSample]): Unused (no labels).

        Returns:
            Dict[str, torch.Tensor]: ``loss_inv``, ``loss_var``, ``loss_cov``.
        """
        assert isinstance(inputs, list) and len(inputs) == 2, \
            'VICReg takes exactly two views'
        # Two separate passes (as the official code) so BatchNorm sees each
        # view's batch statistics on its own.
        z_a = self.neck(self.backbone(inputs[0]))[0]
        z_b = self.neck(self.backbone(inputs[1]))[0]
        self.last_embeddings = (z_a.detach(), z_b.detach())
        return self.head.loss(z_a, z_b)
