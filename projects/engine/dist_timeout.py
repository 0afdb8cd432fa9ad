"""Name a distributed timeout for what it is: another rank hung.

A rank that stops without dying (SIGSTOP, a deadlock, a stuck file system)
leaves the others waiting in a collective (DDP's gradient all-reduce, a
barrier). The process group's timeout (``env_cfg.dist_cfg.timeout``, seconds;
PyTorch's default is 30 minutes) ends the wait with a backend error such as
gloo's ``Timed out waiting 10000ms for recv operation to complete``; this
module turns it into :class:`DistributedTimeoutError` naming the setting, the
rank and the last checkpoint. On NCCL the timeout needs PyTorch's
asynchronous error handling (``TORCH_NCCL_ASYNC_ERROR_HANDLING``, on by
default since PyTorch 2.2) to abort the collective.
"""
import os.path as osp
import re
from typing import Optional

_TIMEOUT = re.compile(r'timed out|timeout', re.IGNORECASE)


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete within the process group's timeout."""


def is_distributed_timeout(exc: BaseException) -> bool:
    """A process-group backend's timeout (not, e.g., a DataLoader's)."""
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_initialized():
        return False
    text = str(exc)
    backend = isinstance(exc, getattr(dist, 'DistBackendError', ())) or \
        any(word in text.lower() for word in ('gloo', 'nccl', 'watchdog'))
    return backend and bool(_TIMEOUT.search(text))


def explain_distributed_timeout(exc: BaseException, timeout: Optional[float],
                                work_dir: Optional[str]) -> None:
    """Raise :class:`DistributedTimeoutError` from ``exc`` if it is a
    collective's timeout; return otherwise."""
    if not is_distributed_timeout(exc):
        return
    import torch.distributed as dist
    rank = dist.get_rank() if dist.is_initialized() else 0
    last = None
    if work_dir and osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            last = f.read().strip()
    limit = f'{timeout:g} s' if timeout else 'the default 30 min'
    raise DistributedTimeoutError(
        f'rank {rank}: a distributed collective (DDP all-reduce / barrier) '
        f'timed out after {limit} (env_cfg.dist_cfg.timeout): another rank '
        f'stopped responding (hung, stopped or much slower). The job stops; '
        f'last checkpoint: {last or "none yet"} (resume with --resume). '
        f'Backend message: {str(exc).strip()[:300]}') from exc
