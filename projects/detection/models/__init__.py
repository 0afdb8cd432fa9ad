from .batched_rpn_head import BatchedRPNHead
from .cached_anchor_generator import CachedAnchorGenerator
from .recording_soft_teacher import RecordingSoftTeacher
from .sync_bn_if_cuda import SyncBNIfCUDA
from .sync_free_max_iou_assigner import SyncFreeMaxIoUAssigner

__all__ = [
    'BatchedRPNHead', 'CachedAnchorGenerator', 'RecordingSoftTeacher',
    'SyncBNIfCUDA', 'SyncFreeMaxIoUAssigner'
]
