"""Training-loop safeguards shared by the MMPretrain and MMDetection configs.

- :mod:`.hooks`: :class:`NonFiniteLossHook` stops (or skips) a step whose
  loss is NaN/Inf, before a checkpoint is written from it;
  :class:`ChannelsLastHook` converts the model to NHWC.
- :mod:`.config_check`: checks run by ``tools/train.py``/``tools/test.py``
  before anything is built: unknown or mistyped ``--cfg-options`` keys,
  missing data/checkpoint paths, ``num_classes`` vs the dataset's classes.

Hooks are registered in mmengine's root registry, which the ``mmpretrain``
and ``mmdet`` child registries fall back to.
"""
from .config_check import (ConfigCheckError, check_cfg_options, check_config,
                           check_config_paths, check_num_classes)
from .hooks import ChannelsLastHook, NonFiniteLossError, NonFiniteLossHook

__all__ = [
    'NonFiniteLossHook', 'NonFiniteLossError', 'ChannelsLastHook',
    'ConfigCheckError',
    'check_cfg_options', 'check_config', 'check_config_paths',
    'check_num_classes'
]
