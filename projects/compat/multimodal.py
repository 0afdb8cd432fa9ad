"""Keep mmpretrain's multimodal models from importing transformers >= 5.

mmpretrain 1.2.0 imports its BLIP/CLIP/... models whenever
``transformers>=4.28`` is installed (``mmpretrain.utils.dependency.
WITH_MULTIMODAL``); with transformers 5 that import raises
``TypeError: NoneType takes no arguments`` and takes ``import mmdet.models``
(which imports mmpretrain) down with it. This project uses no multimodal
model, so when transformers >= 5 is present an import hook (the standard
``sys.meta_path`` extension point) sets ``WITH_MULTIMODAL = False`` right
after mmpretrain defines it; the multimodal names stay registered as
placeholders that explain what to install.
"""
import importlib.abc
import importlib.metadata
import importlib.util
import sys

_TARGET = 'mmpretrain.utils.dependency'


def _transformers_major() -> int:
    try:
        version = importlib.metadata.version('transformers')
    except importlib.metadata.PackageNotFoundError:
        return 0
    try:
        return int(version.split('.')[0])
    except ValueError:
        return 0


def multimodal_disabled() -> bool:
    """Whether this module turns mmpretrain's multimodal imports off."""
    return _transformers_major() >= 5


class _DisableMultimodal(importlib.abc.MetaPathFinder, importlib.abc.Loader):

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # find the real spec, then wrap it
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.WITH_MULTIMODAL = False


if multimodal_disabled():
    if _TARGET in sys.modules:
        sys.modules[_TARGET].WITH_MULTIMODAL = False
    elif not any(isinstance(f, _DisableMultimodal) for f in sys.meta_path):
        sys.meta_path.insert(0, _DisableMultimodal())
