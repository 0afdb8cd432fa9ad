"""Compatibility fixes that let mmengine 0.10.7 / mmcv 2.1.0 / mmdet 3.3.0 /
mmpretrain 1.2.0 run on current PyTorch, numpy and transformers.

Imported by every entry point in ``tools/`` and by every config through
``custom_imports``. Each fix lives in its own module and uses a documented
extension point; nothing in site-packages is edited:

- :mod:`.checkpoint`: a ``weights_only`` checkpoint loader with an allow-list
  (mmengine ``CheckpointLoader.register_scheme``), so runner checkpoints load
  under torch >= 2.6 and untrusted pickles are refused.
- :mod:`.multimodal`: an import hook that keeps mmpretrain's multimodal models
  (unused here) from importing a transformers >= 5 they cannot import.
- :mod:`.hue`: numpy 2 safe ``mmcv.adjust_hue`` (used by every SSL view).
- :mod:`.mmcv_ops`: an import hook that serves ``mmcv._ext`` on torchvision's
  kernels when no compiled mmcv is installed (``mmcv-lite`` is enough).
- :mod:`.atomic_io`: checkpoints are written to a temporary file and renamed
  (mmengine ``register_backend``), so a kill or a full disk never leaves a
  truncated checkpoint under its real name. ``last_checkpoint`` is atomic
  when ``PreemptionHook`` writes it, not when mmengine's ``CheckpointHook``
  does (plain ``open()``, outside the file backends).
- :mod:`.amp`: ``grad_scaler`` and ``autocast`` that work on torch < 2.3.
"""
# First, so that nothing imports mmcv.ops before mmcv._ext can be served.
from .mmcv_ops import MissingCompiledOpError, install_ext_finder, ops_backend

install_ext_finder()

from .amp import autocast, grad_scaler  # noqa: E402
from .atomic_io import AtomicLocalBackend, atomic_write  # noqa: E402
from .checkpoint import (TRUST_ENV_VAR, UntrustedCheckpointError,  # noqa: E402
                         safe_torch_load)
from .hue import adjust_hue  # noqa: E402
from .multimodal import multimodal_disabled  # noqa: E402

__all__ = [
    'AtomicLocalBackend', 'atomic_write',
    'safe_torch_load', 'UntrustedCheckpointError', 'TRUST_ENV_VAR',
    'adjust_hue', 'multimodal_disabled', 'grad_scaler', 'autocast',
    'MissingCompiledOpError', 'ops_backend'
]
