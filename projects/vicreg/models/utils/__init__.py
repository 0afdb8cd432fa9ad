from .full_gather import FullGatherLayer, batch_all_gather
from .gpu_views import VICRegGPUViewsPreprocessor, vicreg_views

__all__ = [
    'FullGatherLayer', 'batch_all_gather', 'VICRegGPUViewsPreprocessor',
    'vicreg_views'
]
