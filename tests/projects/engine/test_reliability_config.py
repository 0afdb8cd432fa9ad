"""Fault injection, in process: config mistakes (unknown or
mistyped --cfg-options, missing paths, a wrong class count) fail before
training."""

import pytest
from reliability_helpers import DET, DET_PRE, VICREG, det_opts, run_tool

from projects.launch import ConfigCheckError, load_config


# ----------------------------------------------------------- config faults
def test_cfg_options_unknown_key_or_wrong_type(tmp_path):
    for opts, expect in [
        ({'train_cfg.max_epoch': 3}, "did you mean 'max_epochs'"),
        ({'model.backbne.depth': 50}, "did you mean 'backbone'"),
        ({'custom_hooks.7.interval': 1}, 'that list has'),
        ({'train_cfg.max_epochs': 'ten'}, "expects a number, got 'ten'"),
        ({'model.backbone': 18}, 'is a dict'),
    ]:
        with pytest.raises(ConfigCheckError, match=expect):
            load_config(VICREG, opts, work_dir=str(tmp_path))
    # a new constructor argument is allowed
    cfg = load_config(VICREG, {'train_dataloader.dataset.listing_cache':
                               None}, work_dir=str(tmp_path))
    assert cfg.train_dataloader.dataset.listing_cache is None


def test_missing_paths_and_class_count_fail_before_training(
        tmp_path, monkeypatch, labeled):
    # missing data folder, through tools/train.py
    work = tmp_path / 'work'
    with pytest.raises(FileNotFoundError,
                       match='train_dataloader.dataset.data_root = .*nope'):
        run_tool('train.py', VICREG, '--work-dir', work, '--cfg-options',
                 f'train_dataloader.dataset.data_root={tmp_path}/nope',
                 monkeypatch=monkeypatch)
    assert not work.exists() or not list(work.rglob('*.pth'))
    base = [f'{k}={v}' for k, v in det_opts(labeled).items()]
    cases = [
        (['train_dataloader.dataset.ann_file=annotations/none.json'],
         FileNotFoundError, r'train_dataloader.dataset.ann_file = .*none'),
        # validation on: its (default) data paths are checked too
        ([], FileNotFoundError, 'val_dataloader.dataset.data_root'),
        (['model.roi_head.bbox_head.num_classes=80', '--no-validate'],
         ConfigCheckError, 'num_classes = 80 but train_dataloader.dataset '
         'has 100 classes'),
    ]
    for opts, exc, match in cases:
        extra = [o for o in opts if o.startswith('--')]
        opts = [o for o in opts if not o.startswith('--')]
        with pytest.raises(exc, match=match):
            monkeypatch.chdir(tmp_path)  # no data/demo here
            run_tool('train.py', DET, '--work-dir', work, *extra,
                     '--cfg-options', *base, *opts, monkeypatch=monkeypatch)
    # a pretrained checkpoint that does not exist (PretrainedBackboneCheck-
    # Hook, before the first iteration; also tests/projects/detection/test_det_e2e.py)
    from projects.detection.engine.hooks.pretrained_backbone_check_hook import \
        PretrainedLoadError
    with pytest.raises(PretrainedLoadError, match='gone.pth.* does not exist'):
        run_tool('train.py', DET_PRE, '--work-dir', work, '--no-validate',
                 '--cfg-options', *base,
                 f'model.backbone.init_cfg.checkpoint={tmp_path}/gone.pth',
                 monkeypatch=monkeypatch)
    # load_from that does not exist
    with pytest.raises(FileNotFoundError, match='load_from = .*gone.pth'):
        run_tool('train.py', DET, '--work-dir', work, '--no-validate',
                 '--cfg-options', *base, f'load_from={tmp_path}/gone.pth',
                 monkeypatch=monkeypatch)
    assert not list(work.rglob('*.pth'))
