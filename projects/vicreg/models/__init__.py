from .heads import VICRegHead
from .losses import VICRegLoss
from .utils import (FullGatherLayer, VICRegGPUViewsPreprocessor,
                    batch_all_gather)
from .vicreg import VICReg

__all__ = [
    'VICReg', 'VICRegHead', 'VICRegLoss', 'FullGatherLayer',
    'batch_all_gather', 'VICRegGPUViewsPreprocessor'
]
