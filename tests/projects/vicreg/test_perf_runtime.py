"""Performance-related runtime checks on CPU: no host synchronisation in
VICRegLARS.step and in the GPU views, and a tiny Runner training run with
the -gpuviews config (decode-only workers + views in the preprocessor)."""
import os.path as osp

import torch
from process_helpers import ROOT

import projects.vicreg  # noqa: F401

# isort: split
from projects.vicreg.engine import VICRegLARS
from projects.vicreg.models.utils import gpu_views as G


def test_lars_step_is_sync_free(no_host_sync):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16),
                                torch.nn.BatchNorm1d(16),
                                torch.nn.Linear(16, 4, bias=False))
    opt = VICRegLARS(model.parameters(), lr=0.1)
    model(torch.randn(6, 8)).square().sum().backward()
    model[2].weight.grad.zero_()  # zero update norm branch
    with no_host_sync():
        opt.step()
        opt.step()


def test_gpu_views_are_sync_free(no_host_sync):
    imgs = torch.randint(0, 256, (3, 3, 40, 48), dtype=torch.uint8)
    with no_host_sync():
        G.vicreg_views(imgs, size=32,
                       generator=torch.Generator().manual_seed(0))
        G.vicreg_views(imgs, size=32, blur='gaussian')


def test_runner_trains_with_gpuviews_preprocessor(tmp_path):
    import numpy as np
    from mmengine.config import Config
    from mmengine.runner import Runner
    from PIL import Image
    data = tmp_path / 'unlabeled'
    data.mkdir()
    rng = np.random.default_rng(0)
    for k in range(8):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), np.uint8)).save(
            data / f'{k}.PNG')
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/vicreg/'
                 'vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py'))
    gcfg = Config.fromfile(
        osp.join(ROOT, 'configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_'
                 'unlabeled-gpuviews-nhwc-bf16.py'))
    cfg.train_dataloader.dataset.pipeline = \
        gcfg.train_dataloader.dataset.pipeline
    cfg.train_dataloader.dataset.data_root = str(data)
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.pin_memory = False
    cfg.data_preprocessor = gcfg.data_preprocessor
    cfg.data_preprocessor.size = 32
    cfg.data_preprocessor.sigma = (0.1 * 32 / 224, 2.0 * 32 / 224)
    cfg.custom_hooks = [dict(type='ChannelsLastHook')]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=100)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    before = runner.model.backbone.conv1.weight.detach().clone()
    runner.train()
    w = runner.model.backbone.conv1.weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(before, w.detach())
    assert isinstance(runner.model.data_preprocessor,
                      G.VICRegGPUViewsPreprocessor)
