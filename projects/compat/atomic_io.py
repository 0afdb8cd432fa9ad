"""Atomic writes for local files (checkpoints and the files
``PreemptionHook`` writes).

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a
process killed (or a disk filling up) mid-save leaves a truncated checkpoint
under the real name. This backend writes to a temporary file in the same
folder, fsyncs it and renames it over the target (``os.replace`` is atomic on
POSIX): a reader sees the old file or the complete new one, never a torn one.
Registered with mmengine's documented ``register_backend`` for the local
prefix, so ``save_checkpoint`` and ``CheckpointHook``'s checkpoints use it
unchanged. ``CheckpointHook`` writes ``last_checkpoint`` itself with
``open()``, outside any backend, so that small file is not atomic (it is
written after its checkpoint is complete); ``PreemptionHook`` writes it with
:func:`atomic_write`.

The result is the file ``open()`` would give: a new file gets ``0666 &
~umask``, an overwritten one keeps its mode, and a symlink stays a link (its
target is replaced).

A process killed during the write (``kill -9``, the node going down) cannot
remove its temporary file; :func:`remove_orphan_temporaries` deletes such
files at the next start (``PreemptionHook`` calls it on the work dir).
"""
import os
import os.path as osp
import re
import secrets
import stat
from pathlib import Path
from typing import List, Tuple, Union

from mmengine.fileio.backends import LocalBackend, register_backend

_SUFFIX = '.tmp'
# '.<target name>.<8 random characters>.tmp'
_TEMPORARY = re.compile(r'^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$')


def remove_orphan_temporaries(folder: Union[str, Path]) -> List[str]:
    """Delete the temporary files :func:`atomic_write` left in ``folder``
    when its process was killed mid-write; return their paths.

    Call it when no other process is writing into ``folder`` (at the start
    of a run, on the rank that writes checkpoints). Other files, and folders
    below ``folder``, are not touched.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if _TEMPORARY.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def _create_temporary(target: str) -> Tuple[int, str]:
    """Open a new temporary file beside ``target``; mode 0666 & ~umask as
    for any new file (``mkstemp`` would force 0600)."""
    folder, name = osp.split(target)
    while True:
        tmp = osp.join(folder, f'.{name}.{secrets.token_hex(4)}{_SUFFIX}')
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                           0o666), tmp
        except FileExistsError:
            continue


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` all-or-nothing."""
    # through symlinks: replace the link's target, the link stays a link
    target = osp.realpath(filepath)
    os.makedirs(osp.dirname(target), exist_ok=True)
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, 'wb') as f:
            if osp.exists(target):  # overwriting keeps the mode
                os.fchmod(fd, stat.S_IMODE(os.stat(target).st_mode))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
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
