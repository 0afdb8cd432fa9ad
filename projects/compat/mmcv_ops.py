"""mmcv's compiled ops on torchvision's kernels: ``mmcv-lite`` is enough.

mmcv 2.1.0 has no wheel for torch >= 2.2 and building it takes half an hour
(and ``nvcc`` for CUDA ops). This project's pipelines call only three of its
compiled functions (``nms``, ``roi_align_forward``, ``roi_align_backward``;
recorded while the demo and the tests ran with
``VICREG_DET_RECORD_MMCV_OPS=FILE``), and torchvision ships CPU and CUDA kernels
for all three. So when no compiled ``mmcv._ext`` is installed, an import hook
(the standard ``sys.meta_path`` extension point, appended last so a real
``mmcv._ext`` always wins) serves ``mmcv._ext`` from this module. Every other
``_ext`` function stays importable (mmdet imports many ops at import time) and
raises :class:`MissingCompiledOpError` when called.

Environment variables:

- ``VICREG_DET_MMCV_OPS=torchvision``: use these ops even where a compiled
  ``mmcv._ext`` is installed (A/B benchmarks); ``compiled``: fail at import
  unless a compiled one is installed.
- ``VICREG_DET_RECORD_MMCV_OPS=FILE``: append the name of every ``_ext``
  function the first time this process calls it (either backend).
"""
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor

_EXT = 'mmcv._ext'
BACKEND_ENV = 'VICREG_DET_MMCV_OPS'
RECORD_ENV = 'VICREG_DET_RECORD_MMCV_OPS'
#: what ``mmcv.ops`` needs compiled for this project's pipelines.
COVERED_OPS = ('nms', 'roi_align_forward', 'roi_align_backward')
MMCV_POOL_MAX, MMCV_POOL_AVG = 0, 1  # mmcv's RoIAlign pool_mode codes


class MissingCompiledOpError(NotImplementedError):
    """An mmcv op outside :data:`COVERED_OPS` was called without compiled mmcv."""


def _missing(name: str) -> Callable:

    def op(*args, **kwargs):
        raise MissingCompiledOpError(
            f"mmcv op '{name}' needs mmcv's compiled extension (mmcv._ext), "
            f'which is not installed: this project runs mmcv-lite with '
            f'torchvision kernels for {", ".join(COVERED_OPS)} only. To get '
            f'every mmcv op, run `python tools/install.py --mmcv-from-source` '
            f'(builds mmcv 2.1.0, about 30 minutes on 2 cores; CUDA ops need '
            f'nvcc matching torch.version.cuda).')

    op.__name__ = name
    return op


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
        offset: int = 0) -> Tensor:
    """``mmcv._ext.nms``: kept indices, by descending score.

    mmcv's ``offset`` (box width is ``x2 - x1 + offset``) equals shifting
    ``x2, y2`` by ``offset`` before an offset-free NMS. mmcv visits boxes in
    the order of torch's default (unstable) descending sort, torchvision in a
    stable one; sorting first with mmcv's call keeps mmcv's order among tied
    scores (the stable re-sort of sorted scores changes nothing).
    """
    scores, order = scores.sort(0, descending=True)
    boxes = boxes[order]
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + offset], dim=1)
    return order[torch.ops.torchvision.nms(boxes, scores,
                                           float(iou_threshold))]


def roi_align_forward(input: Tensor, rois: Tensor, output: Tensor,
                      argmax_y: Tensor, argmax_x: Tensor, aligned_height: int,
                      aligned_width: int, spatial_scale: float,
                      sampling_ratio: int, pool_mode: int,
                      aligned: bool) -> None:
    """``mmcv._ext.roi_align_forward`` (average pooling): fills ``output``."""
    if pool_mode != MMCV_POOL_AVG:
        _missing("roi_align_forward(pool_mode='max')")()
    output.copy_(
        torch.ops.torchvision.roi_align(input, rois, float(spatial_scale),
                                        int(aligned_height),
                                        int(aligned_width),
                                        int(sampling_ratio), bool(aligned)))


def roi_align_backward(grad_output: Tensor, rois: Tensor, argmax_y: Tensor,
                       argmax_x: Tensor, grad_input: Tensor,
                       aligned_height: int, aligned_width: int,
                       spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    """``mmcv._ext.roi_align_backward`` (average pooling): fills
    ``grad_input``."""
    if pool_mode != MMCV_POOL_AVG:
        _missing("roi_align_backward(pool_mode='max')")()
    batch, channels, height, width = grad_input.shape
    grad_input.copy_(
        torch.ops.torchvision._roi_align_backward(
            grad_output, rois, float(spatial_scale), int(aligned_height),
            int(aligned_width), batch, channels, height, width,
            int(sampling_ratio), bool(aligned)))


def get_compiler_version() -> str:
    return 'none (torchvision kernels, projects.compat.mmcv_ops)'


def get_compiling_cuda_version() -> str:
    return 'none (torchvision kernels, projects.compat.mmcv_ops)'


def torchvision_ext() -> types.ModuleType:
    """A module that stands in for ``mmcv._ext``."""
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    module = types.ModuleType(_EXT, __doc__)
    module.__file__ = __file__
    module.TORCHVISION_BACKEND = True
    for fn in (nms, roi_align_forward, roi_align_backward,
               get_compiler_version, get_compiling_cuda_version):
        setattr(module, fn.__name__, fn)

    def __getattr__(name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        return _missing(name)

    module.__getattr__ = __getattr__
    return module


@contextlib.contextmanager
def use_ext(ext: types.ModuleType) -> Iterator[None]:
    """Run ``mmcv.ops``' nms and RoIAlign on ``ext`` for the duration
    (A/B comparisons of the two backends in one process)."""
    # the submodules, not the functions mmcv.ops re-exports under their names
    nms_mod = importlib.import_module('mmcv.ops.nms')
    roi_mod = importlib.import_module('mmcv.ops.roi_align')
    saved = nms_mod.ext_module, roi_mod.ext_module
    nms_mod.ext_module = roi_mod.ext_module = ext
    try:
        yield
    finally:
        nms_mod.ext_module, roi_mod.ext_module = saved


def _record_calls(module: types.ModuleType, path: str) -> None:
    """Wrap the module's functions to append each one's name on first call."""
    seen = set()

    def wrap(name: str, fn: Callable) -> Callable:

        def recorded(*args, **kwargs):
            if name not in seen:
                seen.add(name)
                with open(path, 'a') as f:
                    f.write(name + '\n')
            return fn(*args, **kwargs)

        return recorded

    for name in dir(module):
        fn = getattr(module, name)
        if not name.startswith('_') and callable(fn):
            setattr(module, name, wrap(name, fn))
    fallback = module.__dict__.get('__getattr__')
    if fallback is not None:
        module.__getattr__ = lambda name: wrap(name, fallback(name))


class _ExtFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``mmcv._ext``: the compiled one if installed (and not
    overridden), else :func:`torchvision_ext`."""

    def __init__(self, force_torchvision: bool, record: Optional[str]):
        self.force_torchvision = force_torchvision
        self.record = record
        self.real_spec = None

    def find_spec(self, fullname, path, target=None):
        if fullname != _EXT:
            return None
        # Appended last without recording, this runs only when no other
        # finder found a compiled mmcv._ext; first in line (recording), it
        # looks for one itself so that it can wrap it.
        # The start-up hook's LazyExtFinder, asked in that loop, hands the
        # question back to this finder: a spec it answers with is not a
        # compiled one (taking it made create_module recurse forever).
        if self.record and not self.force_torchvision:
            real_spec = None
            for finder in list(sys.meta_path):
                if finder is not self and hasattr(finder, 'find_spec'):
                    spec = finder.find_spec(fullname, path, target)
                    if spec is not None and not isinstance(
                            spec.loader, _ExtFinder):
                        real_spec = spec
                        break
            self.real_spec = real_spec
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        if self.real_spec is not None:
            return self.real_spec.loader.create_module(self.real_spec)
        return torchvision_ext()

    def exec_module(self, module):
        if self.real_spec is not None:
            module.__spec__ = self.real_spec
            self.real_spec.loader.exec_module(module)
        if self.record:
            _record_calls(module, self.record)


def ops_backend() -> str:
    """``'compiled'`` or ``'torchvision'``: what ``mmcv.ops`` runs on."""
    ext = sys.modules.get(_EXT)
    if ext is None:
        try:
            ext = importlib.import_module(_EXT)
        except ImportError:
            return 'missing'
    return 'torchvision' if getattr(ext, 'TORCHVISION_BACKEND',
                                    False) else 'compiled'


def ext_finder() -> Optional[_ExtFinder]:
    """The registered ``mmcv._ext`` finder (None: not registered, e.g. with
    ``VICREG_DET_MMCV_OPS=compiled``). The start-up hook
    (``vicreg_det_startup.py``) hands ``mmcv._ext`` imports over to it."""
    return next((f for f in sys.meta_path if isinstance(f, _ExtFinder)),
                None)


def install_ext_finder() -> None:
    """Register the ``mmcv._ext`` finder (idempotent)."""
    if ext_finder() is not None:
        return
    choice = os.environ.get(BACKEND_ENV, 'auto').lower()
    if choice not in ('auto', 'torchvision', 'compiled'):
        raise ValueError(f'{BACKEND_ENV}={choice!r}: use auto, torchvision '
                         f'or compiled')
    if choice == 'compiled':
        return  # the normal import machinery, failing if none is installed
    record = os.environ.get(RECORD_ENV) or None
    finder = _ExtFinder(choice == 'torchvision', record)
    if choice == 'torchvision' or record:
        sys.meta_path.insert(0, finder)
    else:
        sys.meta_path.append(finder)  # only reached if no real _ext is found
