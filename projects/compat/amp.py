"""``grad_scaler`` and ``autocast`` that work on every supported torch.

``torch.amp.GradScaler(device)`` exists from torch 2.3; before it only
``torch.cuda.amp.GradScaler`` does (CUDA only; disabled, it is a no-op on a
CPU too). mmengine 0.10.7's ``AmpOptimWrapper`` picks the same way.
Before torch 2.3 a CPU ``torch.autocast`` with ``dtype=torch.float16`` is
refused even when ``enabled=False``; a disabled ``autocast`` here is a no-op.
"""
import contextlib

import torch


def grad_scaler(device_type: str, enabled: bool = True, **kwargs):
    """A dynamic loss scaler for ``device_type`` ('cuda' or 'cpu')."""
    if hasattr(torch.amp, 'GradScaler'):
        return torch.amp.GradScaler(device_type, enabled=enabled, **kwargs)
    if enabled and device_type != 'cuda':
        raise RuntimeError(
            f'torch {torch.__version__} has no GradScaler for '
            f'{device_type!r}: use bf16 (no scaler) or torch >= 2.3.')
    return torch.cuda.amp.GradScaler(enabled=enabled, **kwargs)


def autocast(device_type: str, dtype: torch.dtype, enabled: bool = True):
    """``torch.autocast``, or nothing at all when ``enabled`` is False."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)
