from .hooks import (PretrainedBackboneCheckHook, PretrainedLoadError,
                    check_backbone)

__all__ = ['PretrainedBackboneCheckHook', 'PretrainedLoadError',
           'check_backbone']
