"""VICReg (Bardes, Ponce & LeCun, ICLR 2022) as an MMPretrain algorithm.

Importing this package registers, in mmpretrain's registries:

- models: :class:`VICReg`, :class:`VICRegHead`, :class:`VICRegLoss`
- optimizer: :class:`VICRegLARS`
- param schedulers: :class:`ClosedFormLinearLR`,
  :class:`ClosedFormCosineAnnealingLR`
- hooks: :class:`CollapseMonitorHook`, :class:`ObjectCropKNNHook` (kNN
  probe on labeled object crops, ``projects/vicreg/evaluation``)
- dataset: :class:`UnlabeledImageFolder`
- transforms: :class:`FastColorJitter`, :class:`FastRandomGrayscale`,
  :class:`FastGaussianBlur` (the official views' ops on uint8 with cv2,
  ``projects/vicreg/datasets/transforms/fast_views.py``)
- data preprocessor: :class:`VICRegGPUViewsPreprocessor` (the two views
  on the device, ``projects/vicreg/models/utils/gpu_views.py``)

Configs pull it in with ``custom_imports=dict(imports=['projects.compat',
'projects.vicreg'], allow_failed_imports=False)``.
"""
from .. import compat  # noqa: F401  (compatibility fixes first)
from .datasets import (FastColorJitter, FastGaussianBlur, FastRandomGrayscale,
                       UnlabeledImageFolder)
from .engine import (ClosedFormCosineAnnealingLR, ClosedFormLinearLR,
                     CollapseMonitorHook, ObjectCropKNNHook, VICRegLARS)
from .evaluation import ObjectCropKNN
from .models import (FullGatherLayer, VICReg, VICRegGPUViewsPreprocessor,
                     VICRegHead, VICRegLoss, batch_all_gather)

__all__ = [
    'UnlabeledImageFolder', 'ClosedFormLinearLR',
    'ClosedFormCosineAnnealingLR', 'CollapseMonitorHook', 'VICRegLARS',
    'VICReg', 'VICRegHead', 'VICRegLoss', 'FullGatherLayer',
    'batch_all_gather', 'VICRegGPUViewsPreprocessor',
    'FastColorJitter', 'FastRandomGrayscale', 'FastGaussianBlur',
    'ObjectCropKNNHook', 'ObjectCropKNN'
]
