"""Shared set-up for ``tools/train.py`` and ``tools/test.py``.

One pair of tools serves MMPretrain and MMDetection configs: the config's
``default_scope`` picks the scope-specific defaults, everything else is
mmengine's ``Runner``. :mod:`.config_check` holds the checks the tools run
before anything is built: unknown or mistyped ``--cfg-options`` keys,
missing data/checkpoint paths, ``num_classes`` vs the dataset's classes.
"""
import os
import os.path as osp
import subprocess
from typing import Optional

from .. import compat  # noqa: F401  (compatibility fixes first)

# isort: split
import torch
from mmengine.config import Config, ConfigDict

from .config_check import ConfigCheckError, check_config  # noqa: F401

SCOPES = ('mmpretrain', 'mmdet')


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Load a config and apply the command-line overrides common to tools."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'{path}: default_scope={scope!r}; this project runs '
                         f'configs whose default_scope is one of {SCOPES}')
    if cfg_options:
        from .config_check import check_cfg_options
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
        init_cpu_distributed(launcher, dist_cfg.get('timeout'))
        # mmengine wraps the model in DDP with device_ids=[LOCAL_RANK], which
        # DDP rejects for a CPU module; an explicit None takes precedence.
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = ConfigDict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False))
        cfg.model_wrapper_cfg.setdefault('device_ids', None)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    return cfg


def init_cpu_distributed(launcher: str,
                         timeout: Optional[float] = None) -> None:
    """Start a gloo process group for a job without GPUs.

    mmengine's launchers call ``torch.cuda.set_device`` and default to NCCL,
    both of which fail without CUDA. The Runner skips its own initialisation
    when a process group exists, so we set the same environment mmengine
    would (for Slurm: rank, world size, master address from the node list)
    and start gloo ourselves. ``timeout`` (seconds, the config's
    ``env_cfg.dist_cfg.timeout`` as mmengine's ``init_dist`` reads it) bounds
    every collective: a hung rank fails the others after it.
    """
    import torch.distributed as dist
    if dist.is_initialized():
        return
    if launcher == 'slurm':
        node_list = os.environ['SLURM_NODELIST']
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault(
            'MASTER_ADDR',
            subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1'))
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} needs GPUs; on CPU use '
                         f'pytorch (tools/dist_train.sh) or slurm')
    kwargs = {}
    if timeout is not None:
        import datetime
        kwargs['timeout'] = datetime.timedelta(seconds=float(timeout))
    dist.init_process_group(backend='gloo', **kwargs)


def build_runner(cfg: Config):
    """mmengine's Runner (or the config's ``runner_type``) for ``cfg``, whose
    config text is formatted once (:mod:`.config_text`)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from projects.compat import ops_backend
    from .config_text import format_once
    cfg = format_once(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(
        cfg)
    # completes the Runner's environment header
    runner.logger.info(f'mmcv ops backend: {ops_backend()}')
    return runner


def close_distributed(completed: bool) -> None:
    """Tear the process group down before the interpreter exits.

    A gloo group left to the interpreter's exit aborts the process now and
    then ("terminate called without an active exception", SIGABRT: its
    worker threads still hold work when the interpreter is finalised);
    torchrun then reports the run as failed. Call it after dropping the
    runner: a DDP wrapper keeps the group alive past ``destroy_process_group``
    (measurements: docs/reliability.md). After a failure
    (``completed=False``) there is no barrier: the other ranks may never
    reach it.
    """
    import gc

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # the dropped runner's cycles (model, DDP reducer)
    if completed:
        dist.barrier()
    dist.destroy_process_group()


def set_local_rank(local_rank: int) -> None:
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
