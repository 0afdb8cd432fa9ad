from .pretrained_backbone_check_hook import (PretrainedBackboneCheckHook,
                                             PretrainedLoadError,
                                             check_backbone)

__all__ = ['PretrainedBackboneCheckHook', 'PretrainedLoadError',
           'check_backbone']
