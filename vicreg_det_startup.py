"""Interpreter start-up hook of the vicreg-det install.

The install puts ``vicreg_det_startup.pth`` in site-packages (see
``tools/build_hooks.py``); Python's ``site`` runs its one line,
``import vicreg_det_startup; vicreg_det_startup.install()``, in every
interpreter of that environment. So mmdet's and mmcv's own APIs
(``from mmdet.apis import DetInferencer``, ``import mmcv.ops``) work with
``mmcv-lite`` without importing this project first.

:func:`install` only registers :class:`LazyExtFinder` in ``sys.meta_path``
and imports nothing else (no torch, no mmcv): start-up stays as fast as
before. The finder is appended last, so it is asked only when no other finder
found a compiled ``mmcv._ext``; then it imports :mod:`projects.compat`, which
applies every compatibility fix and registers the finder that serves
``mmcv._ext`` on torchvision's kernels, and hands the import over to it.
With a compiled mmcv installed it is never asked and does nothing.

Environment variables: ``VICREG_DET_STARTUP_HOOK=0`` turns the hook off (the
stock OpenMMLab behaviour; ``import projects.compat`` still applies the
fixes); ``VICREG_DET_MMCV_OPS`` and ``VICREG_DET_RECORD_MMCV_OPS``
(``projects/compat/mmcv_ops.py``) are honoured: ``torchvision`` or recording
puts the finder first, so it is asked even where a compiled ``mmcv._ext``
exists, ``compiled`` leaves the hook out.
"""
import os
import sys

EXT = 'mmcv._ext'
DISABLE_ENV = 'VICREG_DET_STARTUP_HOOK'
# the names projects/compat/mmcv_ops.py reads (importing it imports torch)
BACKEND_ENV = 'VICREG_DET_MMCV_OPS'
RECORD_ENV = 'VICREG_DET_RECORD_MMCV_OPS'


class LazyExtFinder:
    """Defers ``mmcv._ext`` to :mod:`projects.compat`, imported on demand."""

    def __init__(self):
        # projects.compat's recording finder asks every other finder for a
        # compiled mmcv._ext, this one included: answer None while busy.
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != EXT or self._busy:
            return None
        self._busy = True
        try:
            try:
                from projects.compat import mmcv_ops
            except ModuleNotFoundError as err:
                if err.name in ('projects', 'projects.compat'):
                    return None  # the project is gone; behave like mmcv
                raise
            finder = mmcv_ops.ext_finder()
            if finder is None:  # VICREG_DET_MMCV_OPS=compiled
                return None
            return finder.find_spec(fullname, path, target)
        finally:
            self._busy = False

    def invalidate_caches(self):
        pass


def install() -> None:
    """Register :class:`LazyExtFinder` (idempotent)."""
    if os.environ.get(DISABLE_ENV) == '0' or any(
            type(f).__name__ == LazyExtFinder.__name__ for f in sys.meta_path):
        return
    backend = os.environ.get(BACKEND_ENV, 'auto').lower()
    if backend == 'compiled':
        return
    if backend == 'torchvision' or os.environ.get(RECORD_ENV):
        sys.meta_path.insert(0, LazyExtFinder())
    else:
        sys.meta_path.append(LazyExtFinder())
