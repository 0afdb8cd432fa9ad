"""Shared by the in-process fault-injection tests
(tests/projects/engine/test_reliability_*.py): the configs they train and
their --cfg-options, and tools/*.py run in the test's process."""
import os
import os.path as osp
import runpy
import sys

from process_helpers import ROOT

from projects.launch import build_runner, load_config

VICREG = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
DET = osp.join(ROOT, 'configs/faster_rcnn/'
               'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')
DET_PRE = osp.join(
    ROOT, 'configs/faster_rcnn/'
    'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')


def vicreg_opts(data, cache, epochs=2, **extra):
    opts = {
        'train_dataloader.dataset.data_root': str(data),
        'train_dataloader.dataset.listing_cache': str(cache),
        'train_dataloader.batch_size': 4,  # 8 images: 2 iterations / epoch
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': epochs,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'randomness.seed': 0,
    }
    opts.update(extra)
    return opts


def vicreg_runner(tmp_path, data, work, hooks=(), **extra):
    cfg = load_config(VICREG, vicreg_opts(data, tmp_path / 'cache', **extra),
                      work_dir=str(work))
    cfg.custom_hooks = list(cfg.custom_hooks) + list(hooks)
    cfg.experiment_name = f'run{len(os.listdir(work)) if work.exists() else 0}'
    return build_runner(cfg)


def run_tool(tool, *args, monkeypatch):
    """Run tools/<tool> in this process (imports are already paid)."""
    monkeypatch.setattr(sys, 'argv', [tool, *map(str, args)])
    return runpy.run_path(osp.join(ROOT, 'tools', tool), run_name='__main__')


def det_opts(root, **extra):
    opts = {
        'train_dataloader.dataset.data_root': f'{root}/',
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 2,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_best': None,
        'default_hooks.checkpoint.interval': 1,
        'randomness.seed': 0,
    }
    opts.update(extra)
    return opts
