"""Backbone initialisation from VICReg / torchvision files cannot fail
silently."""
import types

import pytest
import torch
from det_helpers import (DEMO_CONFIG, fake_vicreg_checkpoint,
                         torchvision_checkpoint)
from mmengine.config import Config
from mmengine.registry import init_default_scope

from projects.detection.engine.hooks.pretrained_backbone_check_hook import (
    PretrainedBackboneCheckHook, PretrainedLoadError, check_backbone)


def build_detector(checkpoint, prefix='backbone.', init=True):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    cfg.model.backbone.init_cfg.prefix = prefix
    model = MODELS.build(cfg.model)
    if init:
        model.init_weights()
    return model


def assert_backbone_equals(model, expected):
    state = model.backbone.state_dict()
    assert set(state) == set(expected) - {'fc.weight', 'fc.bias'}
    for k, v in state.items():
        assert torch.equal(v, expected[k]), k


def test_vicreg_checkpoint_loads_tensor_for_tensor(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    expected = fake_vicreg_checkpoint(str(ckpt))
    model = build_detector(ckpt)
    assert_backbone_equals(model, expected)
    msg = check_backbone(model.backbone)
    assert msg.startswith('backbone: loaded 120/120 tensors from ')
    assert str(ckpt) in msg


def test_torchvision_layout_loads_without_prefix(tmp_path):
    ckpt = tmp_path / 'resnet18.pth'
    expected = torchvision_checkpoint(str(ckpt))
    model = build_detector(ckpt, prefix=None)
    assert_backbone_equals(model, expected)
    msg = check_backbone(model.backbone)
    assert 'loaded 120/120' in msg and 'fc.weight' in msg  # fc ignored
    # without the fc allowance the classifier head is reported
    with pytest.raises(PretrainedLoadError, match='unexpected.*fc.bias'):
        check_backbone(model.backbone, ignore_unexpected=())


def test_no_prefix_on_vicreg_file_is_caught(tmp_path):
    """mmengine loads nothing (strict=False) and only warns: the seed bug."""
    ckpt = tmp_path / 'epoch_1.pth'
    fake_vicreg_checkpoint(str(ckpt))
    model = build_detector(ckpt, prefix=None)  # init_weights passes...
    with pytest.raises(PretrainedLoadError) as err:
        check_backbone(model.backbone)  # ...the check does not
    text = str(err.value)
    assert 'missing from the file' in text and 'conv1.weight' in text
    assert "wrong prefix" in text and "'backbone.' (120)" in text


def test_wrong_prefix_and_wrong_path(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    fake_vicreg_checkpoint(str(ckpt))
    model = build_detector(ckpt, prefix='encoder.', init=False)
    with pytest.raises(PretrainedLoadError,
                       match="no key starts with prefix 'encoder.'.*"
                       "'backbone.' \\(120\\)"):
        check_backbone(model.backbone, check_values=False)
    model = build_detector(tmp_path / 'nope.pth', init=False)
    with pytest.raises(PretrainedLoadError,
                       match='nope.pth.*does not exist.*'
                       'model.backbone.init_cfg.checkpoint'):
        check_backbone(model.backbone, check_values=False)


def test_shape_mismatch(tmp_path):
    """A ResNet-50 file for a ResNet-18 detector."""
    ckpt = tmp_path / 'r50.pth'
    fake_vicreg_checkpoint(str(ckpt), depth=50)
    model = build_detector(ckpt, init=False)
    with pytest.raises(PretrainedLoadError, match='shape mismatches'):
        check_backbone(model.backbone, check_values=False)


def fake_runner(model, iter_=0, resume=False, train=True):
    """The public runner attributes the hook reads: train() has built the
    optim wrapper before ``before_run``, val()/test() leave it a config."""
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    logs = []
    wrapper = (OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
               if train else dict(optimizer=dict(type='SGD', lr=0.1)))
    runner = types.SimpleNamespace(
        model=model, iter=iter_, cfg=Config(dict(resume=resume)),
        optim_wrapper=wrapper, logger=types.SimpleNamespace(info=logs.append))
    return runner, logs


def test_hook(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    fake_vicreg_checkpoint(str(ckpt))
    hook = PretrainedBackboneCheckHook()
    # before_run (before init_weights) catches a bad file early
    bad = build_detector(tmp_path / 'missing.pth', init=False)
    with pytest.raises(PretrainedLoadError, match='does not exist'):
        hook.before_run(fake_runner(bad)[0])
    hook.before_run(fake_runner(bad, resume=True)[0])  # resuming: skipped
    hook.before_run(fake_runner(bad, train=False)[0])  # test(): skipped
    # before_train (after init_weights) compares values
    model = build_detector(ckpt, init=False)
    hook.before_run(fake_runner(model)[0])  # keys/shapes fine
    with pytest.raises(PretrainedLoadError, match='differ from the file'):
        hook.before_train(fake_runner(model)[0])  # init_weights not run
    runner, logs = fake_runner(model, iter_=5)
    hook.before_train(runner)  # resumed run: skipped
    assert 'skipped' in logs[0]
    runner, logs = fake_runner(model)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, {})  # load_from: the file's weights
    hook.before_train(runner)
    assert 'skipped' in logs[0]
    model.init_weights()
    hook.before_run(fake_runner(model)[0])  # a new run: nothing loaded
    hook.before_train(fake_runner(model)[0])


def test_sync_bn_if_cuda_is_bn_on_cpu():
    from mmcv.cnn import build_norm_layer
    init_default_scope('mmdet')
    name, layer = build_norm_layer(dict(type='SyncBNIfCUDA'), 8, postfix=1)
    assert name == 'bn1'
    expected = (torch.nn.SyncBatchNorm if torch.cuda.is_available() else
                torch.nn.BatchNorm2d)
    assert type(layer) is expected
    assert layer.weight.requires_grad


def test_resnet50_keys_equal_torchvision():
    """mmdet's ResNet-50 state dict has torchvision's names and shapes, so a
    torchvision-layout file (official VICReg) needs no prefix."""
    import torchvision
    from mmdet.models import ResNet
    ours = ResNet(depth=50).state_dict()
    tv = torchvision.models.resnet50().state_dict()
    tv.pop('fc.weight'), tv.pop('fc.bias')
    assert {k: v.shape for k, v in ours.items()} == \
        {k: v.shape for k, v in tv.items()}
    assert len(ours) == 318
