"""End to end: tools/train.py on the ResNet-18 demo config, resume, and the
backbone loading into MMDetection."""
import glob
import json
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from process_helpers import ROOT

from projects.vicreg.demo_data import write_demo_folder

DEMO = osp.join(ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')  # noqa: E501
BATCH, WARMUP_ITERS = 4, 2  # 9 files // 4 = 2 iters/epoch, 1 epoch


def _train(tmp_path, work, *extra, max_epochs):
    opts = [
        f'train_dataloader.dataset.data_root={tmp_path / "data"}',
        f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}',
        f'train_dataloader.batch_size={BATCH}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.max_epochs={max_epochs}',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1',
        'custom_hooks.0.interval=1',
        'randomness.seed=0',
    ]
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), DEMO,
           '--work-dir', str(work), *extra, '--cfg-options', *opts]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _scalars(work):
    """Iteration records of the latest run's json log."""
    runs = sorted(glob.glob(str(work / '*' / 'vis_data' / 'scalars.json')))
    with open(runs[-1]) as f:
        return [r for r in map(json.loads, f) if 'loss' in r]


@pytest.mark.slow
def test_train_resume_and_load_into_mmdet(tmp_path, monkeypatch):
    write_demo_folder(str(tmp_path / 'data'), num=8, size=40)
    (tmp_path / 'data' / 'broken.png').write_bytes(b'')
    work = tmp_path / 'work'

    log = _train(tmp_path, work, max_epochs=1)
    assert (work / 'epoch_1.pth').is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'epoch_1.pth')
    assert 'Skipping unreadable image' in log
    from mmengine.config import Config
    config_lr = Config.fromfile(DEMO).optim_wrapper.optimizer.lr
    base_lr = config_lr * BATCH / 256  # auto_scale_lr from base batch 256
    first = _scalars(work)
    assert [r['iter'] for r in first] == [1, 2]
    for r in first:
        assert {'loss_inv', 'loss_var', 'loss_cov', 'emb_std', 'rankme',
                'rankme_ratio'} <= set(r)
        assert r['lr'] == pytest.approx(
            base_lr * (r['iter'] - 1) / WARMUP_ITERS, abs=1e-12)

    log = _train(tmp_path, work, '--resume', max_epochs=2)
    assert 'resumed epoch: 1, iter: 2' in log
    second = _scalars(work)
    assert [r['iter'] for r in second] == [3, 4]  # continued, not restarted
    # iter 3: warmup done, full lr; iter 4: halfway down the 2-iter cosine
    # to 0.001 * lr (official adjust_learning_rate). The first run stopped
    # at the end of the warmup; the resumed one anneals to its new end.
    assert second[0]['lr'] == pytest.approx(base_lr)
    assert second[1]['lr'] == pytest.approx(base_lr * (0.5 + 0.5e-3))
    ckpt = str(work / 'epoch_2.pth')
    assert osp.isfile(ckpt)

    # The backbone loads into MMDetection's ResNet-18 with no missing or
    # unexpected keys, straight from the training checkpoint ...
    from mmdet.models.backbones import ResNet as DetResNet
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    weights = _load_checkpoint_with_prefix('backbone.', ckpt)
    det = DetResNet(depth=18)
    result = det.load_state_dict(weights, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    # ... and from the extracted tensors-only file, via init_cfg.
    backbone = str(tmp_path / 'backbone.pth')
    monkeypatch.setattr(sys, 'argv', ['vicreg_to_backbone.py', ckpt,
                                      backbone])
    runpy.run_path(osp.join(ROOT, 'tools/model_converters/'
                            'vicreg_to_backbone.py'), run_name='__main__')
    det = DetResNet(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=backbone, prefix='backbone.'))
    det.init_weights()
    for k, v in det.state_dict().items():
        assert torch.equal(v, weights[k]), k
