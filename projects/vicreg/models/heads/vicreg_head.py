from typing import Dict, List, Optional, Union

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class VICRegHead(BaseModule):
    """Head for VICReg: applies the VICReg criterion to the two embeddings.

    Implementation of `VICReg <https://arxiv.org/abs/2105.04906>`_. The
    embeddings are the expander (projector) outputs; unlike BYOL/SimSiam
    there is no predictor and no stop-gradient, both branches get gradients.

    Args:
        loss (dict): Config dict for the loss, e.g. ``VICRegLoss``.
        init_cfg (dict or List[dict], optional): Initialization config dict.
            Defaults to None.
    """

    def __init__(self,
                 loss: dict,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_module = MODELS.build(loss)
        self._reported = False

    def loss(self, z_a: torch.Tensor,
             z_b: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Forward head.

        Args:
            z_a (torch.Tensor): NxD embeddings of the first view.
            z_b (torch.Tensor): NxD embeddings of the second view.

        Returns:
            Dict[str, torch.Tensor]: The weighted loss terms.
        """
        if not self._reported:  # once: shows the gather at work in the log
            local_n, world_size = z_a.size(0), get_world_size()
            print_log(
                f'VICRegHead: loss variance/covariance over '
                f'{local_n * world_size} embeddings gathered from '
                f'{world_size} process(es) (local batch {local_n})',
                logger='current')
            self._reported = True
        return self.loss_module(z_a, z_b)
