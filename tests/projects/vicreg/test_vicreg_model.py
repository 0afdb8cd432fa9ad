"""VICReg model, expander == official Projector, collapse monitor hook."""
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

import projects.vicreg  # noqa: F401

# isort: split
import projects.vicreg.engine.hooks.collapse_monitor_hook as cmh

# isort: split
from mmpretrain.registry import MODELS
from process_helpers import ROOT

from projects.vicreg.reference import official_projector

CFG = osp.join(ROOT, 'configs/vicreg')
BASELINE = osp.join(CFG, 'vicreg_resnet50_1xb128-coslr-230e_unlabeled.py')
DEMO = osp.join(CFG, 'vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')


def test_baseline_neck_is_the_official_projector():
    init_default_scope('mmpretrain')
    neck_cfg = Config.fromfile(BASELINE).model.neck
    assert (neck_cfg.in_channels, neck_cfg.hid_channels,
            neck_cfg.out_channels) == (2048, 8192, 8192)
    # Same flags, small widths (and BN1d: SyncBN needs CUDA when distributed)
    neck_cfg.update(in_channels=12, hid_channels=16, out_channels=10,
                    norm_cfg=dict(type='BN1d'))
    neck = MODELS.build(neck_cfg)
    neck.init_weights()
    ref = official_projector(12, '16-16-10')
    ours = [neck.fc0, neck.bn0, neck.fc1, neck.bn1, neck.fc2]
    theirs = [ref[0], ref[1], ref[3], ref[4], ref[6]]
    assert not hasattr(neck, 'bn2')
    for a, b in zip(ours, theirs):
        assert type(a) is type(b)
        sa, sb = a.state_dict(), b.state_dict()
        assert {k: v.shape for k, v in sa.items()} == \
            {k: v.shape for k, v in sb.items()}
        if isinstance(a, nn.BatchNorm1d):  # same init as PyTorch's default
            torch.testing.assert_close(sa['weight'], sb['weight'])
            torch.testing.assert_close(sa['bias'], sb['bias'])
        b.load_state_dict(sa)
    feat = torch.randn(6, 12, 3, 3)  # neck does the backbone's avg-pool
    out = neck((feat, ))[0]
    torch.testing.assert_close(out, ref(feat.mean(dim=(2, 3))))


def test_model_loss_and_embeddings():
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(DEMO).model)
    model.init_weights()
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    losses = model.loss(views, data_samples=[])
    assert set(losses) == {'loss_inv', 'loss_var', 'loss_cov'}
    sum(losses.values()).backward()
    z_a, z_b = model.last_embeddings
    assert z_a.shape == z_b.shape == (4, 512)
    assert not z_a.requires_grad
    assert model.backbone.zero_init_residual
    # zero_init_residual: last BN of each residual block starts at 0
    assert model.backbone.layer1[0].bn2.weight.abs().sum() == 0
    assert model.neck.fc2.bias is None and model.neck.fc0.bias is not None


def test_embedding_stats_detect_collapse():
    torch.manual_seed(0)
    healthy = cmh.embedding_stats(torch.randn(64, 32))
    assert 0.8 < healthy['emb_std'] < 1.2
    assert healthy['rankme_ratio'] > 0.7
    line = torch.randn(64, 1) * torch.randn(1, 32)  # rank-1 embeddings
    assert cmh.embedding_stats(line)['rankme'] < 1.5
    constant = torch.ones(64, 32) + 1e-6 * torch.randn(64, 32)
    assert cmh.embedding_stats(constant)['emb_std'] < 1e-4


@pytest.mark.parametrize('collapsed', [False, True])
def test_hook_logs_and_warns(collapsed, monkeypatch):
    warnings = []
    monkeypatch.setattr(
        cmh, 'print_log',
        lambda msg, level=logging.INFO, **kw: warnings.append(msg)
        if level == logging.WARNING else None)
    torch.manual_seed(0)
    z = torch.zeros(8, 16) if collapsed else torch.randn(8, 16)
    hub = MessageHub.get_instance(f'vicreg-hook-test-{collapsed}')
    runner = SimpleNamespace(
        model=SimpleNamespace(last_embeddings=(z, z + 0.0)),
        iter=9, message_hub=hub)
    hook = cmh.CollapseMonitorHook(interval=10)
    hook.after_train_iter(runner, batch_idx=0)
    std = hub.get_scalar('train/emb_std').current()
    assert (std < 0.1) == collapsed
    assert 'train/rankme' in hub.log_scalars
    assert len(warnings) == int(collapsed)
    runner.iter = 10  # not a multiple of the interval: nothing logged
    hook.after_train_iter(runner, batch_idx=0)
    assert len(hub.get_scalar('train/emb_std').data[0]) == 1


def test_head_reports_the_gather_once_and_loss_is_pure(monkeypatch):
    import projects.vicreg.models.heads.vicreg_head as vh
    logged = []
    monkeypatch.setattr(vh, 'print_log', lambda msg, **kw: logged.append(msg))
    head = MODELS.build(dict(type='VICRegHead', loss=dict(type='VICRegLoss')))
    z = torch.randn(4, 8)
    first = head.loss(z, z + 0.1)
    second = head.loss(z, z + 0.1)
    assert len(logged) == 1
    assert 'over 4 embeddings gathered from 1 process(es) (local batch 4)' \
        in logged[0]
    for k in first:  # same inputs, same terms: no state in the loss
        torch.testing.assert_close(first[k], second[k])
