from .nonfinite_skip_optim_wrapper import (NonFiniteSkipAmpOptimWrapper,
                                           NonFiniteSkipMixin,
                                           NonFiniteSkipOptimWrapper)

__all__ = [
    'NonFiniteSkipMixin', 'NonFiniteSkipOptimWrapper',
    'NonFiniteSkipAmpOptimWrapper'
]
