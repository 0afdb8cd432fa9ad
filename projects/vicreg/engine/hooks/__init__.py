from .collapse_monitor_hook import CollapseMonitorHook
from .object_crop_knn_hook import ObjectCropKNNHook

__all__ = ['CollapseMonitorHook', 'ObjectCropKNNHook']
