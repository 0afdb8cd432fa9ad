"""Backbone initialisation from a (VICReg) checkpoint that cannot fail
silently.

mmengine's ``Pretrained`` initializer loads with ``strict=False``: with a
wrong ``prefix`` (or none, on a file whose keys start with ``backbone.``)
it logs a warning and the detector trains from random init — the seed's bug.
:class:`PretrainedBackboneCheckHook` (added to ``custom_hooks`` by the
configs) stops such a run before its first iteration:

- ``before_run`` (training only, not when resuming): the file named by the
  backbone's ``init_cfg`` must exist, and after the prefix its keys and
  shapes must equal the backbone's; this runs *before* ``init_weights``, so
  the error is ours, not a strict=False warning.
- ``before_train`` (after ``init_weights``; skipped when resuming or when
  ``load_from`` replaced the weights): every backbone tensor must equal the
  file's, which proves the weights were really loaded. It logs
  ``backbone: loaded 120/120 tensors from ...``.

A hook rather than a strict initializer: it checks the *result* (whatever
loaded the weights and whatever ran after it), keeps the standard
``init_cfg=dict(type='Pretrained', ...)`` in configs, and costs one extra
read of the file.

Tolerated on purpose: ``num_batches_tracked`` buffers absent from the file
(mmengine ignores them too), and file keys matching ``ignore_unexpected``
(default ``fc.*``: a torchvision classifier head, not part of a backbone).
"""
import fnmatch
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper
from mmengine.runner.checkpoint import CheckpointLoader

from projects.compat import safe_torch_load

CKPT_OPTION = 'model.backbone.init_cfg.checkpoint'


class PretrainedLoadError(RuntimeError):
    """The backbone's pretrained weights are missing or do not match."""


def pretrained_init_cfg(module: torch.nn.Module) -> Optional[dict]:
    """The ``Pretrained`` entry of ``module.init_cfg``, or None."""
    cfgs = getattr(module, 'init_cfg', None)
    cfgs = cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]
    for cfg in cfgs:
        if cfg is not None and cfg.get('type') in ('Pretrained',
                                                   'PretrainedInit'):
            return cfg
    return None


def load_backbone_state(checkpoint: str,
                        prefix: Optional[str]) -> Dict[str, torch.Tensor]:
    """The tensors mmengine's ``Pretrained(checkpoint, prefix)`` would load.

    Local files go through :func:`projects.compat.safe_torch_load`. Raises
    :class:`PretrainedLoadError` for a missing file or an unmatched prefix.
    """
    if '://' not in checkpoint:
        if not osp.isfile(checkpoint):
            raise PretrainedLoadError(
                f'backbone checkpoint {checkpoint!r} does not exist (cwd '
                f'{osp.abspath(".")}). Train the pretraining first or set '
                f'--cfg-options {CKPT_OPTION}=PATH (model.detector.backbone... '
                f'in a Soft Teacher config)')
        ckpt = safe_torch_load(checkpoint, map_location='cpu')
    else:
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise PretrainedLoadError(
            f'{checkpoint}: not a state dict (got {type(ckpt).__name__})')
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if prefix:
        p = prefix if prefix.endswith('.') else prefix + '.'
        stripped = {k[len(p):]: v for k, v in state.items()
                    if k.startswith(p)}
        if not stripped:
            raise PretrainedLoadError(
                f'{checkpoint}: no key starts with prefix {p!r}; the file\'s '
                f'keys start with {_key_heads(state)}. Fix '
                f'model.backbone.init_cfg.prefix (None for a plain '
                f'torchvision-layout backbone file)')
        return stripped
    # prefix None: mmengine's load_checkpoint strips a DDP 'module.' prefix.
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def _key_heads(state: dict, n: int = 5) -> str:
    heads = Counter(k.split('.', 1)[0] + '.' for k in state)
    return ', '.join(f'{h!r} ({c})' for h, c in heads.most_common(n)) or '-'


def _listing(keys: Sequence[str], n: int = 15) -> str:
    keys = list(keys)
    more = f', ... ({len(keys) - n} more)' if len(keys) > n else ''
    return ', '.join(keys[:n]) + more


def compare_backbone(backbone: torch.nn.Module,
                     loaded: Dict[str, torch.Tensor],
                     ignore_unexpected: Sequence[str] = ('fc.*', ),
                     check_values: bool = True
                     ) -> Tuple[int, int, List[str], List[str]]:
    """Compare a backbone's state dict with the tensors of a file.

    Returns ``(n_equal, n_total, ignored_unexpected, absent_buffers)``;
    raises :class:`PretrainedLoadError` listing missing, unexpected,
    shape-mismatched and (``check_values``) value-mismatched keys.
    """
    model = backbone.state_dict()
    missing = [k for k in model if k not in loaded]
    absent = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in absent]
    extra = [k for k in loaded if k not in model]
    ignored = [k for k in extra
               if any(fnmatch.fnmatchcase(k, p) for p in ignore_unexpected)]
    unexpected = [k for k in extra if k not in ignored]
    shape = [f'{k} {tuple(loaded[k].shape)} vs {tuple(v.shape)}'
             for k, v in model.items()
             if k in loaded and loaded[k].shape != v.shape]
    different = []
    n_equal = 0
    for k, v in model.items():
        if k not in loaded or loaded[k].shape != v.shape:
            continue
        if not check_values:
            n_equal += 1
        elif torch.equal(v.detach().cpu(), loaded[k].to(v.dtype)):
            n_equal += 1
        else:
            different.append(k)
    problems = []
    if missing:
        problems.append(f'{len(missing)} backbone tensors missing from the '
                        f'file: {_listing(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected tensors in the file: '
                        f'{_listing(unexpected)}')
    if shape:
        problems.append(f'{len(shape)} shape mismatches (file vs model): '
                        f'{_listing(shape)}')
    if different:
        problems.append(f'{len(different)} backbone tensors differ from the '
                        f'file after init_weights (not loaded?): '
                        f'{_listing(different)}')
    if problems:
        if missing and len(missing) + len(absent) == len(model):
            problems.append('nothing matches: wrong prefix or wrong file? '
                            'the file\'s keys start with '
                            f'{_key_heads(loaded)}')
        raise PretrainedLoadError('\n  '.join(problems))
    return n_equal, len(model), ignored, absent


def check_backbone(backbone: torch.nn.Module,
                   ignore_unexpected: Sequence[str] = ('fc.*', ),
                   check_values: bool = True) -> str:
    """Check ``backbone`` against the file of its ``Pretrained`` init_cfg.

    Returns the log line; raises :class:`PretrainedLoadError`.
    """
    cfg = pretrained_init_cfg(backbone)
    if cfg is None:
        return ('backbone: no Pretrained init_cfg, training from random '
                'init')
    checkpoint, prefix = cfg.get('checkpoint'), cfg.get('prefix')
    if not checkpoint:
        raise PretrainedLoadError('backbone init_cfg has no checkpoint')
    loaded = load_backbone_state(checkpoint, prefix)
    try:
        n_equal, n_total, ignored, absent = compare_backbone(
            backbone, loaded, ignore_unexpected, check_values)
    except PretrainedLoadError as err:
        raise PretrainedLoadError(
            f'backbone weights from {checkpoint!r} (prefix {prefix!r}) do '
            f'not match the {type(backbone).__name__} backbone:\n  {err}'
        ) from None
    verb = 'loaded' if check_values else 'keys/shapes match for'
    notes = [f'prefix {prefix!r}']
    if ignored:
        notes.append(f'ignored {len(ignored)} file keys: {_listing(ignored)}')
    if absent:
        notes.append(f'{len(absent)} num_batches_tracked not in file')
    return (f'backbone: {verb} {n_equal}/{n_total} tensors from '
            f'{checkpoint} ({"; ".join(notes)})')


@HOOKS.register_module()
class PretrainedBackboneCheckHook(Hook):
    """Stop training before the first iteration unless the backbone holds
    exactly the tensors of its ``Pretrained`` init_cfg file (see module
    docstring).

    Args:
        ignore_unexpected: fnmatch patterns of file keys (after the prefix)
            that may be absent from the backbone.
        check_values: also compare values after ``init_weights``.
    """
    priority = 'VERY_HIGH'

    def __init__(self, ignore_unexpected: Sequence[str] = ('fc.*', ),
                 check_values: bool = True) -> None:
        self.ignore_unexpected = tuple(ignore_unexpected)
        self.check_values = check_values
        self._loaded = False  # a checkpoint (load_from/resume) was loaded

    @staticmethod
    def _backbones(runner) -> List[torch.nn.Module]:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if hasattr(model, 'student'):  # mmdet SemiBaseDetector (SoftTeacher)
            return [model.student.backbone, model.teacher.backbone]
        return [model.backbone]

    def before_run(self, runner) -> None:
        self._loaded = False
        # Runner.train() builds its optim wrapper before this hook and calls
        # init_weights after it; val()/test() never initialise weights (and
        # leave the optim wrapper a config).
        if not isinstance(runner.optim_wrapper, BaseOptimWrapper):
            return
        if runner.cfg.get('resume', False) or runner.iter > 0:
            return
        for backbone in self._backbones(runner):
            check_backbone(backbone, self.ignore_unexpected,
                           check_values=False)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = True  # load_from, or resume (through load_checkpoint)

    def before_train(self, runner) -> None:
        if runner.iter > 0 or self._loaded:
            runner.logger.info('backbone: weights come from a resumed/loaded '
                               'checkpoint; pretrained check skipped')
            return
        backbones = self._backbones(runner)
        for backbone in backbones:
            message = check_backbone(backbone, self.ignore_unexpected,
                                     self.check_values)
        if len(backbones) > 1:
            message += ' (student and teacher)'
        print_log(message, logger='current')
