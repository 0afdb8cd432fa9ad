"""Fault injection, in process: NaN/Inf losses stop a run before
a checkpoint is written from it (NonFiniteLossHook) or skip the step
(NonFiniteSkipOptimWrapper); every training config keeps the guard."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import CheckpointLoader
from process_helpers import ROOT
from reliability_helpers import DET, det_opts, vicreg_runner

from projects.engine import NonFiniteLossError
from projects.launch import build_runner, load_config


@HOOKS.register_module(force=True)
class InjectNaNHook(Hook):
    """Test-only: makes the backbone output NaN in the given iterations (a
    corrupt batch as the model sees it)."""

    priority = 'VERY_HIGH'

    def __init__(self, iters=(2, ), value=float('nan')):
        self.iters = set(iters)
        self.value = value
        self._handle = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter in self.iters:
            model = runner.model.module if hasattr(runner.model, 'module') \
                else runner.model
            self._handle = model.backbone.register_forward_hook(
                lambda m, i, out: tuple(o * self.value for o in out))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


# ----------------------------------------------------------- NaN / Inf loss
# skipping NaN/Inf steps is the optim wrapper's (projects/engine/optim)
SKIP_OPTIM_WRAPPER = {'optim_wrapper.type': 'NonFiniteSkipOptimWrapper'}


def test_nan_loss_stops_run_and_keeps_last_checkpoint(tmp_path, unlabeled):
    work = tmp_path / 'work'
    # iteration 4 (runner.iter 3) is the second of epoch 2: epoch_1.pth is
    # the last good checkpoint
    runner = vicreg_runner(tmp_path, unlabeled, work,
                           hooks=[dict(type='InjectNaNHook', iters=[3])])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 4' in msg and 'epoch 2' in msg
    for term in ('loss_inv', 'loss_var', 'loss_cov'):
        assert f'{term}=nan' in msg
    assert 'epoch_1.pth' in msg  # names the last checkpoint
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    ckpt = CheckpointLoader.load_checkpoint(str(work / 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 2
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if v.is_floating_point())


def test_inf_loss_skip_mode_skips_the_step_and_finishes(tmp_path, unlabeled):
    work = tmp_path / 'work'
    runner = vicreg_runner(
        tmp_path, unlabeled, work,
        hooks=[dict(type='InjectNaNHook', iters=[1], value=float('inf'))],
        **SKIP_OPTIM_WRAPPER)
    guard = [h for h in runner.hooks if type(h).__name__ ==
             'NonFiniteLossHook'][0]
    before = {}

    class _Snapshot(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 1:
                before.update({k: v.clone() for k, v in
                               runner.model.state_dict().items()
                               if 'backbone.conv1' in k})

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter == 1:  # before the counter moves on
                for k, v in before.items():  # the step was not taken
                    assert torch.equal(runner.model.state_dict()[k], v), k

    runner.register_hook(_Snapshot(), priority='LOWEST')
    runner.train()
    assert guard.total_skips == 1 == runner.optim_wrapper.skipped_steps
    ckpt = CheckpointLoader.load_checkpoint(str(work / 'epoch_2.pth'))
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if v.is_floating_point())


def test_skip_mode_gives_up_after_consecutive_skips(tmp_path, unlabeled):
    runner = vicreg_runner(
        tmp_path, unlabeled, tmp_path / 'work',
        hooks=[dict(type='InjectNaNHook', iters=[0, 1, 2])],
        **SKIP_OPTIM_WRAPPER)
    guard = [h for h in runner.hooks if type(h).__name__ ==
             'NonFiniteLossHook'][0]
    guard.max_consecutive_skips = 2
    with pytest.raises(NonFiniteLossError, match='3 optimizer steps in a row'):
        runner.train()


def test_absurd_lr_stops_detector_naming_loss_terms(tmp_path, labeled):
    cfg = load_config(DET, det_opts(labeled, **{
        'optim_wrapper.optimizer.lr': 1e12,
        'default_hooks.checkpoint.by_epoch': False}),
        work_dir=str(tmp_path / 'work'))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'Non-finite loss at iteration' in msg
    assert any(f'{t}=' in msg for t in ('loss_cls', 'loss_bbox',
                                        'loss_rpn_cls', 'loss_rpn_bbox'))
    it = int(msg.split('iteration ')[1].split(' ')[0])
    saved = sorted(p.name for p in (tmp_path / 'work').glob('iter_*.pth'))
    # every checkpoint is from before the failing iteration
    assert saved == [f'iter_{i}.pth' for i in range(1, it)][-3:]


def test_every_training_config_enables_the_guard():
    """A config that replaces ``custom_hooks`` must keep the NaN guard."""
    import glob

    from mmengine.config import Config
    missing = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))):
        cfg = Config.fromfile(path)
        hooks = [h.get('type') for h in cfg.get('custom_hooks', [])]
        if 'NonFiniteLossHook' not in hooks or 'projects.engine' not in \
                cfg.custom_imports.imports:
            missing.append(osp.relpath(path, ROOT))
    assert missing == []
