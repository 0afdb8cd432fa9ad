"""Atomic writes for local files (checkpoints, ``last_checkpoint``).

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a
process killed (or a disk filling up) mid-save leaves a truncated checkpoint
under the real name. This backend writes to a temporary file in the same
folder, fsyncs it and renames it over the target (``os.replace`` is atomic on
POSIX): a reader sees the old file or the complete new one, never a torn one.
Registered with mmengine's documented ``register_backend`` for the local
prefix, so ``save_checkpoint`` and ``CheckpointHook`` use it unchanged.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` all-or-nothing."""
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put``/``put_text`` are atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')
