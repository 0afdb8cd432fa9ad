"""Compatibility fixes that let mmengine 0.10.7 / mmcv 2.1.0 / mmdet 3.3.0 /
mmpretrain 1.2.0 run on current PyTorch, numpy, opencv and transformers.

Imported by every entry point in ``tools/`` and by every config through
``custom_imports``. Each fix lives in its own module and uses a documented
extension point; nothing in site-packages is edited:

- :mod:`.checkpoint`: a ``weights_only`` checkpoint loader with an allow-list
  (mmengine ``CheckpointLoader.register_scheme``), so runner checkpoints load
  under torch >= 2.6 and untrusted pickles are refused.
- :mod:`.multimodal`: an import hook that keeps mmpretrain's multimodal models
  (unused here) from importing a transformers >= 5 they cannot import.
- :mod:`.hue`: numpy 2 safe ``mmcv.adjust_hue`` (used by every SSL view).
- :mod:`.atomic_io`: checkpoints and ``last_checkpoint`` are written to a
  temporary file and renamed (mmengine ``register_backend``), so a kill or a
  full disk never leaves a truncated checkpoint under its real name.
"""
from .atomic_io import AtomicLocalBackend, atomic_write
from .checkpoint import (TRUST_ENV_VAR, UntrustedCheckpointError,
                         safe_torch_load)
from .hue import adjust_hue
from .multimodal import multimodal_disabled

__all__ = [
    'AtomicLocalBackend', 'atomic_write',
    'safe_torch_load', 'UntrustedCheckpointError', 'TRUST_ENV_VAR',
    'adjust_hue', 'multimodal_disabled'
]
