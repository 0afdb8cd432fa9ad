"""Checkpoint converters: exact round trip and loud failures."""
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from process_helpers import ROOT

from projects.compat import safe_torch_load
from projects.vicreg.converters import (CheckpointConversionError,
                                        extract_backbone, infer_resnet_depth,
                                        mmpretrain_to_torchvision,
                                        torchvision_to_mmpretrain)

torchvision = pytest.importorskip('torchvision')
TOOLS = osp.join(ROOT, 'tools/model_converters')


@pytest.fixture(scope='module')
def tv_r50():
    torch.manual_seed(0)
    return torchvision.models.resnet50().state_dict()


def test_torchvision_resnet50_round_trip_is_exact(tv_r50):
    ours, depth, dropped = torchvision_to_mmpretrain(tv_r50)
    assert depth == 50 and sorted(dropped) == ['fc.bias', 'fc.weight']
    assert all(k.startswith('backbone.') for k in ours)
    # loads strictly into this project's backbone
    from mmpretrain.models import ResNet
    ResNet(depth=50).load_state_dict(
        {k[len('backbone.'):]: v for k, v in ours.items()}, strict=True)

    back, depth, dropped = mmpretrain_to_torchvision(
        dict(state_dict=ours, meta=dict(note='x')))
    assert depth == 50 and dropped == []
    expected = {k: v for k, v in tv_r50.items() if not k.startswith('fc.')}
    assert list(back) == list(expected)
    for k, v in expected.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    missing, unexpected = torchvision.models.resnet50().load_state_dict(
        back, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected


def test_official_training_checkpoint_layout(tv_r50):
    """{'model': {'module.backbone.*', 'module.projector.*'}, ...}"""
    model = {f'module.backbone.{k}': v for k, v in tv_r50.items()
             if not k.startswith('fc.')}
    model['module.projector.0.weight'] = torch.zeros(8, 2048)
    ours, depth, dropped = torchvision_to_mmpretrain(
        dict(model=model, epoch=3))
    assert depth == 50 and dropped == ['projector.0.weight']
    assert len(ours) == len(tv_r50) - 2


def test_extract_backbone_drops_neck_and_checks(tv_r50):
    state = {f'backbone.{k}': v for k, v in tv_r50.items()
             if not k.startswith('fc.')}
    state['neck.fc0.weight'] = torch.zeros(4, 2048)
    out, depth, dropped = extract_backbone(dict(state_dict=state))
    assert depth == 50 and dropped == ['neck.fc0.weight']
    with pytest.raises(CheckpointConversionError, match='no "backbone." tensors'):
        extract_backbone({'neck.fc0.weight': torch.zeros(1)})


def test_mismatches_fail_loudly(tv_r50):
    broken = dict(tv_r50)
    del broken['layer2.1.bn2.running_var']
    broken['layer2.1.extra.weight'] = torch.zeros(1)
    broken['conv1.weight'] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(CheckpointConversionError) as err:
        torchvision_to_mmpretrain(broken, depth=50)
    msg = str(err.value)
    assert '1 missing [layer2.1.bn2.running_var]' in msg
    assert '1 unexpected [layer2.1.extra.weight]' in msg
    assert 'conv1.weight: (64, 3, 3, 3) != (64, 3, 7, 7)' in msg
    with pytest.raises(CheckpointConversionError, match='ResNet-18'):
        torchvision_to_mmpretrain(tv_r50, depth=18)
    with pytest.raises(CheckpointConversionError, match='not a ResNet'):
        infer_resnet_depth({'layer1.0.conv1.weight': torch.zeros(1)})


def _cli(tool, *args, monkeypatch):
    """Run a converter's __main__ in-process (no re-import cost)."""
    monkeypatch.setattr(sys, 'argv', [tool, *args])
    runpy.run_path(osp.join(TOOLS, tool), run_name='__main__')


def test_cli_round_trip(tmp_path, tv_r50, monkeypatch, capsys):
    src = str(tmp_path / 'resnet50_tv.pth')
    torch.save(tv_r50, src)
    ours, back = str(tmp_path / 'ours.pth'), str(tmp_path / 'back.pth')
    _cli('torchvision_to_mmpretrain.py', src, ours, monkeypatch=monkeypatch)
    _cli('mmpretrain_to_torchvision.py', ours, back, monkeypatch=monkeypatch)
    assert capsys.readouterr().out.count('saved') == 2
    assert set(safe_torch_load(ours)) == {'state_dict', 'meta'}
    result = safe_torch_load(back)
    assert len(result) == len(tv_r50) - 2
    for k, v in tv_r50.items():
        if not k.startswith('fc.'):
            assert torch.equal(result[k], v)
    # a bad file exits non-zero with the reason
    torch.save({'conv1.weight': torch.zeros(1)}, src)
    with pytest.raises(SystemExit, match='not a ResNet'):
        _cli('torchvision_to_mmpretrain.py', src, ours,
             monkeypatch=monkeypatch)


@pytest.mark.slow
def test_cli_runs_standalone(tmp_path, tv_r50):
    """As a user runs it: fresh interpreter, another working directory."""
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'out.pth')
    torch.save(tv_r50, src)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    res = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'torchvision_to_mmpretrain.py'),
         src, dst], capture_output=True, text=True, cwd=str(tmp_path),
        env=env)
    assert res.returncode == 0, res.stderr
    assert 'saved 318 tensors (ResNet-50)' in res.stdout
