"""The official VICReg code (facebookresearch/vicreg, ``main_vicreg.py`` and
``augmentations.py``) written out once, in plain PyTorch/torchvision/PIL.

Tests compare our mmpretrain implementation against these functions and the
benchmarks in ``tools/analysis_tools`` time them as the "official" side, so
there is one copy of the reference semantics. Nothing here is registered or
used by training.
"""
from .augmentations import official_train_transform
from .lars import OfficialLARS, exclude_bias_and_norm
from .loss import off_diagonal, official_loss_terms
from .model import OfficialVICReg
from .projector import official_projector
from .schedule import official_lr
from .train_step import build_official_step

__all__ = [
    'official_train_transform', 'OfficialLARS', 'exclude_bias_and_norm',
    'off_diagonal', 'official_loss_terms', 'OfficialVICReg',
    'official_projector', 'official_lr', 'build_official_step'
]
