"""AnchorGenerator that remembers its anchors and valid flags.

mmdet's ``AnchorHead.get_anchors`` rebuilds the anchors of every FPN level
each step and the valid flags once per *image* per level: many small tensor
ops per image, each a kernel launch on a GPU (counts in
docs/performance.md). They depend only on the feature-map sizes, the padded
image shape, dtype and device, which repeat from step to step (fixed-size
inputs pad to the same shape), so ``CachedAnchorGenerator`` computes them
once per key and returns the same tensors afterwards (callers only read
them; the test runs a training step both ways and compares losses and
gradients).
"""
from collections import OrderedDict
from typing import List, Tuple

import torch
from torch import Tensor

from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class CachedAnchorGenerator(AnchorGenerator):
    """``AnchorGenerator`` (same arguments) with an LRU cache of
    ``grid_priors`` and ``valid_flags``.

    Args:
        cache_size (int): entries kept per method; multi-scale training
            creates one per distinct padded batch shape.
    """

    def __init__(self, *args, cache_size: int = 64, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = cache_size
        self._cache: 'OrderedDict[tuple, List[Tensor]]' = OrderedDict()

    def _cached(self, key: tuple, compute) -> List[Tensor]:
        hit = self._cache.get(key)
        if hit is None:
            hit = compute()
            self._cache[key] = hit
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return list(hit)  # callers may append to / reorder the list

    @staticmethod
    def _sizes(featmap_sizes) -> tuple:
        return tuple((int(h), int(w)) for h, w in featmap_sizes)

    def grid_priors(self,
                    featmap_sizes: List[Tuple],
                    dtype: torch.dtype = torch.float32,
                    device='cuda') -> List[Tensor]:
        key = ('priors', self._sizes(featmap_sizes), dtype,
               str(torch.device(device)))
        return self._cached(
            key, lambda: super(CachedAnchorGenerator, self).grid_priors(
                featmap_sizes, dtype=dtype, device=device))

    def valid_flags(self,
                    featmap_sizes: List[Tuple[int, int]],
                    pad_shape: Tuple,
                    device='cuda') -> List[Tensor]:
        key = ('flags', self._sizes(featmap_sizes),
               tuple(int(s) for s in pad_shape[:2]),
               str(torch.device(device)))
        return self._cached(
            key, lambda: super(CachedAnchorGenerator, self).valid_flags(
                featmap_sizes, pad_shape, device=device))
