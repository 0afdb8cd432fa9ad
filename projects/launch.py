"""Shared set-up for ``tools/train.py`` and ``tools/test.py``.

One pair of tools serves MMPretrain and MMDetection configs: the config's
``default_scope`` picks the scope-specific defaults, everything else is
mmengine's ``Runner``.
"""
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict

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
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        # NCCL needs GPUs; gloo runs the same job on CPU.
        cfg.setdefault('env_cfg', ConfigDict())
        cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    return cfg


def build_runner(cfg: Config):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def set_local_rank(local_rank: int) -> None:
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
