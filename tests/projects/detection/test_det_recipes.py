"""The detection recipe family: per-epoch lr of each schedule and the
original's frozen-BN backbone (configs/faster_rcnn/README.md)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import projects.detection  # noqa: F401

# isort: split
from mmdet.registry import MODELS, PARAM_SCHEDULERS
from process_helpers import ROOT
from schedule_helpers import build_schedulers

CFG = osp.join(ROOT, 'configs/faster_rcnn')
BASE = osp.join(CFG, 'faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py')
ORIGINAL = osp.join(
    CFG, 'faster-rcnn_r50-vicreg-pre-frozenbn_fpn_4xb2-70e-original_'
    'competition.py')
CONSTLR40 = osp.join(
    CFG, 'faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e-constlr40_competition.py')
FROZENBN = osp.join(
    CFG, 'faster-rcnn_r50-vicreg-pre-frozenbn_fpn_4xb2-70e_competition.py')


def epoch_lrs(config, iters_per_epoch: int = 1000) -> list:
    """lr of the last iteration of each epoch, stepping the config's
    schedulers as mmengine's ParamSchedulerHook does (iteration-based ones
    after every iteration, epoch-based ones after every epoch). 1000
    iterations per epoch: the 1000-iter warm-up ends within epoch 0, as on
    the real data (3,750 iterations per epoch)."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope('mmdet')
    epochs = cfg.train_cfg.max_epochs
    param = torch.zeros(1, requires_grad=True)
    wrapper = OptimWrapper(
        torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr))
    schedulers = build_schedulers(PARAM_SCHEDULERS, cfg, wrapper, epochs,
                                  iters_per_epoch)
    lrs = []
    for _ in range(epochs):
        for _ in range(iters_per_epoch):
            lr = wrapper.param_groups[0]['lr']  # used by this iteration
            wrapper.step()
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        lrs.append(lr)
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return lrs


# documented lr at epochs 0, 10, 39, 40, 50, 69 (config headers,
# configs/faster_rcnn/README.md)
DOCUMENTED = {
    'base': (BASE, [5e-3, 5e-3, 5e-3, 5e-3, 5e-3, 5e-5]),
    'original': (ORIGINAL, [5e-3, 1e-3, 4e-5, 5e-3, 1e-3, 2e-4]),
    'constlr40': (CONSTLR40, [5e-3, 1e-3, 4e-5, 5e-3, 5e-3, 5e-3]),
}


@pytest.mark.parametrize('name', list(DOCUMENTED))
def test_lr_trace_matches_documented(name):
    config, want = DOCUMENTED[name]
    lrs = epoch_lrs(config)
    print(f'\n{name} per-epoch lr:')
    for e in range(0, len(lrs), 10):
        print(f'  {e:2d}-{e + 9:2d}: ' +
              ' '.join(f'{lr:.2e}' for lr in lrs[e:e + 10]))
    assert len(lrs) == 70
    got = [lrs[e] for e in (0, 10, 39, 40, 50, 69)]
    assert got == pytest.approx(want, rel=1e-9), name


def test_base_schedule_spends_no_epoch_below_one_percent():
    lrs = epoch_lrs(BASE)
    assert lrs == pytest.approx([5e-3] * 52 + [5e-4] * 12 + [5e-5] * 6)
    # negative control: the old StepLR(10, 0.2) is below 1% of the lr from
    # epoch 30 on, and at 8e-6 or less for the last 30 epochs
    cfg = Config.fromfile(BASE)
    cfg.param_scheduler = [
        cfg.param_scheduler[0],
        dict(type='StepLR', step_size=10, gamma=0.2, by_epoch=True, begin=0,
             end=70)
    ]
    old = epoch_lrs(cfg)
    assert sum(lr < 0.01 * 5e-3 for lr in old) == 40
    assert sum(lr < 1e-5 for lr in old) == 30


def _backbone(config: str):
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    bb = dict(cfg.model.backbone, depth=18, init_cfg=None)  # small, same
    model = MODELS.build(bb)
    model.train()
    return model


@pytest.mark.parametrize('config', [ORIGINAL, FROZENBN])
def test_frozen_bn_backbone_with_every_conv_stage_trainable(config):
    model = _backbone(config)
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert bns and convs
    for m in bns:
        assert not m.training  # eval mode: the checkpoint's statistics
        assert all(not p.requires_grad for p in m.parameters())
    assert all(p.requires_grad for m in convs for p in m.parameters())
    assert model.conv1.weight.requires_grad  # the stem too (5 stages)
    for i in range(1, 5):
        stage = getattr(model, f'layer{i}')
        assert stage.training
        assert any(p.requires_grad for p in stage.parameters())
    # running statistics do not move in a training forward
    mean = bns[0].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(bns[0].running_mean, mean)


def test_negative_control_base_trains_bn():
    model = _backbone(BASE)
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert all(m.training for m in bns)
    assert all(p.requires_grad for m in bns for p in m.parameters())
