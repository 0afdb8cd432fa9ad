from .pretrained_backbone_check_hook import (PretrainedBackboneCheckHook,
                                             PretrainedLoadError,
                                             check_backbone)
from .pseudo_label_quality_hook import PseudoLabelQualityHook

__all__ = ['PretrainedBackboneCheckHook', 'PretrainedLoadError',
           'PseudoLabelQualityHook', 'check_backbone']
