"""``SyncBNIfCUDA``: SyncBN where it can run, BN elsewhere.

``torch.nn.SyncBatchNorm`` needs CUDA; a distributed CPU (gloo) run of a
SyncBN config fails in the first forward. Configs name this type instead of
``SyncBN``: it builds ``nn.SyncBatchNorm`` when CUDA is available and
``nn.BatchNorm2d`` otherwise (mmengine additionally reverts SyncBN to BN in
non-distributed runs). Both have the same parameters and buffers, so
state-dict keys (``bn1.weight``...) are unchanged.
"""
import torch
from mmdet.registry import MODELS
from torch import nn


@MODELS.register_module()
class SyncBNIfCUDA:
    """Norm-layer factory for mmcv's ``build_norm_layer``."""
    _abbr_ = 'bn'  # layer names bn1, bn2... as for BN/SyncBN

    def __new__(cls, num_features: int, **kwargs) -> nn.Module:
        if torch.cuda.is_available():
            return nn.SyncBatchNorm(num_features, **kwargs)
        return nn.BatchNorm2d(num_features, **kwargs)
