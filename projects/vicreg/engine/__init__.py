from .hooks import CollapseMonitorHook
from .optimizers import VICRegLARS
from .schedulers import ClosedFormCosineAnnealingLR, ClosedFormLinearLR

__all__ = [
    'CollapseMonitorHook', 'VICRegLARS', 'ClosedFormLinearLR',
    'ClosedFormCosineAnnealingLR'
]
