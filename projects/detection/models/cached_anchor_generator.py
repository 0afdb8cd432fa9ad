"""AnchorGenerator that remembers its anchors and valid flags.

mmdet's ``AnchorHead.get_anchors`` rebuilds the anchors of every FPN level
each step and the valid flags once per *image* per level: many small tensor
ops per image (counts in docs/performance.md), each a kernel launch on a
GPU. They depend only on the feature-map sizes, the padded image shape,
dtype and device, which repeat when the inputs have few distinct padded
shapes, so ``CachedAnchorGenerator`` computes them once per key and returns
the same tensors afterwards (callers only read them; the test runs a
training step both ways and compares losses and gradients).

Memory: one anchor entry at 1344x800 holds ~269k anchors x 4 floats (about
4.3 MB), its valid flags ~0.27 MB. Anchors and flags therefore have separate
LRU caches, each bounded by a byte budget (and an entry count), so the
memory held is known in advance. Keep-ratio resizing of varied images gives
tens of padded shapes: whether the cache then pays off was measured
(docs/performance.md, "Anchor cache"); it is opt-in in the configs.
"""
from collections import OrderedDict
from typing import Callable, List, Tuple

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
from torch import Tensor


class _BoundedCache:
    """LRU of tensor lists bounded by entries and by bytes (an entry larger
    than the byte budget is computed but not kept)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries: 'OrderedDict[tuple, List[Tensor]]' = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def _size(tensors: List[Tensor]) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)

    def get(self, key: tuple, compute: Callable[[], List[Tensor]]
            ) -> List[Tensor]:
        hit = self.entries.get(key)
        if hit is not None:
            self.hits += 1
            self.entries.move_to_end(key)
            return list(hit)  # callers may append to / reorder the list
        self.misses += 1
        value = compute()
        size = self._size(value)
        if size <= self.max_bytes and self.max_entries > 0:
            self.entries[key] = value
            self.nbytes += size
            while (len(self.entries) > self.max_entries
                   or self.nbytes > self.max_bytes):
                _, old = self.entries.popitem(last=False)
                self.nbytes -= self._size(old)
        return list(value)


@TASK_UTILS.register_module()
class CachedAnchorGenerator(AnchorGenerator):
    """``AnchorGenerator`` (same arguments) with bounded LRU caches of
    ``grid_priors`` and ``valid_flags`` (one each).

    Args:
        cache_entries (int): entries kept per cache (anchors: one per
            distinct set of feature-map sizes, dtype and device; flags: one
            per distinct padded image shape too).
        cache_mib (float): bytes kept per cache, in MiB. The default (32)
            holds 7 anchor entries at 1344x800 (all ~40 shapes of a
            keep-ratio 800/1333 run need ~135 MiB).
    """

    def __init__(self, *args, cache_entries: int = 64,
                 cache_mib: float = 32.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        max_bytes = int(cache_mib * 2**20)
        self.priors_cache = _BoundedCache(cache_entries, max_bytes)
        self.flags_cache = _BoundedCache(cache_entries, max_bytes)

    @staticmethod
    def _sizes(featmap_sizes) -> tuple:
        return tuple((int(h), int(w)) for h, w in featmap_sizes)

    def grid_priors(self,
                    featmap_sizes: List[Tuple],
                    dtype: torch.dtype = torch.float32,
                    device='cuda') -> List[Tensor]:
        key = (self._sizes(featmap_sizes), dtype, str(torch.device(device)))
        return self.priors_cache.get(
            key, lambda: super(CachedAnchorGenerator, self).grid_priors(
                featmap_sizes, dtype=dtype, device=device))

    def valid_flags(self,
                    featmap_sizes: List[Tuple[int, int]],
                    pad_shape: Tuple,
                    device='cuda') -> List[Tensor]:
        key = (self._sizes(featmap_sizes),
               tuple(int(s) for s in pad_shape[:2]),
               str(torch.device(device)))
        return self.flags_cache.get(
            key, lambda: super(CachedAnchorGenerator, self).valid_flags(
                featmap_sizes, pad_shape, device=device))
