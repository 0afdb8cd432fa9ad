from .hooks import CollapseMonitorHook, ObjectCropKNNHook
from .optimizers import VICRegLARS
from .schedulers import ClosedFormCosineAnnealingLR, ClosedFormLinearLR

__all__ = [
    'CollapseMonitorHook', 'ObjectCropKNNHook', 'VICRegLARS',
    'ClosedFormLinearLR',
    'ClosedFormCosineAnnealingLR'
]
