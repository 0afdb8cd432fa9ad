"""Fault injection, in process (issue 7): untrusted checkpoints, NaN/Inf
losses, config mistakes, disk full during a save, bad image files.

The kill -9 / resume and rank-death tests are in
``tests/projects/engine/test_reliability_kill.py`` (slow). docs/reliability.md
has the table of faults, how each is injected and the test that covers it.
"""
import errno
import io
import json
import logging
import os
import os.path as osp
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from fault_helpers import DiskFullFile, RunsCode
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import CheckpointLoader
from PIL import Image
from process_helpers import ROOT

from projects.compat import UntrustedCheckpointError
from projects.engine import NonFiniteLossError
from projects.launch import ConfigCheckError, build_runner, load_config
from projects.vicreg.demo_data import write_demo_folder

VICREG = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
DET = osp.join(ROOT, 'configs/faster_rcnn/'
               'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')
DET_PRE = osp.join(
    ROOT, 'configs/faster_rcnn/'
    'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')


# ------------------------------------------------------------------ helpers
def evil_checkpoint(path, marker):
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(1)},
                'meta': RunsCode(marker)}, str(path))
    return str(path)


@pytest.fixture(scope='module')
def unlabeled(tmp_path_factory):
    root = tmp_path_factory.mktemp('unlabeled')
    write_demo_folder(str(root), num=8, size=40)
    return root


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


# ---------------------------------------------------- untrusted checkpoints
def test_untrusted_checkpoint_refused_by_train_resume_and_load_from(
        tmp_path, unlabeled, monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    opts = [f'{k}={v}' for k, v in
            vicreg_opts(unlabeled, tmp_path / 'cache').items()]
    work = tmp_path / 'work'
    # --resume PATH
    with pytest.raises(UntrustedCheckpointError, match='Refusing to load'):
        run_tool('train.py', VICREG, '--work-dir', work, '--resume', evil,
                 '--cfg-options', *opts, monkeypatch=monkeypatch)
    # --resume (auto): last_checkpoint in the work dir points at it
    (work / 'last_checkpoint').write_text(evil)
    with pytest.raises(UntrustedCheckpointError):
        run_tool('train.py', VICREG, '--work-dir', work, '--resume',
                 '--cfg-options', *opts, monkeypatch=monkeypatch)
    # load_from
    with pytest.raises(UntrustedCheckpointError):
        run_tool('train.py', VICREG, '--work-dir', tmp_path / 'w2',
                 '--cfg-options', *opts, f'load_from={evil}',
                 monkeypatch=monkeypatch)
    assert not marker.exists()
    assert not list(work.glob('*.pth'))  # nothing trained


def test_untrusted_checkpoint_refused_by_test_tool(tmp_path, unlabeled,
                                                  monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    from det_helpers import make_split

    from projects.detection.datasets.competition import convert_to_file
    root = tmp_path / 'labeled'
    make_split(str(root), 'validation', [1, 2], size=(64, 80))
    convert_to_file(str(root), 'validation',
                    str(root / 'annotations/validation.json'), workers=0)
    with pytest.raises(UntrustedCheckpointError):
        run_tool('test.py', DET, evil, '--work-dir', tmp_path / 'work',
                 '--cfg-options', f'test_dataloader.dataset.data_root={root}/',
                 f'test_evaluator.ann_file={root}/annotations/'
                 'validation.json', 'test_dataloader.num_workers=0',
                 'test_dataloader.persistent_workers=False',
                 monkeypatch=monkeypatch)
    assert not marker.exists()


def test_untrusted_checkpoint_refused_by_init_cfg_converters_and_infer(
        tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    # init_cfg=Pretrained (the detector's backbone) and the backbone check
    from mmdet.models.backbones import ResNet as DetResNet
    det = DetResNet(depth=18, init_cfg=dict(type='Pretrained',
                                            checkpoint=evil,
                                            prefix='backbone.'))
    with pytest.raises(UntrustedCheckpointError):
        det.init_weights()
    from projects.detection.engine.hooks.pretrained_backbone_check_hook import \
        load_backbone_state
    with pytest.raises(UntrustedCheckpointError):
        load_backbone_state(evil, "backbone.")
    # every model converter
    conv = osp.join(ROOT, 'tools', 'model_converters')
    for name in sorted(os.listdir(conv)):
        if not name.endswith('.py'):
            continue
        monkeypatch.setattr(sys, 'argv',
                            [name, evil, str(tmp_path / f'out_{name}.pth')])
        with pytest.raises((UntrustedCheckpointError, SystemExit)) as err:
            runpy.run_path(osp.join(conv, name), run_name='__main__')
        if err.type is SystemExit:  # a converter that reports and exits
            assert 'Refusing to load' in str(err.value.code), name
        assert not (tmp_path / f'out_{name}.pth').exists(), name
    # tools/infer.py
    img = tmp_path / '1.JPEG'
    Image.new('RGB', (32, 32)).save(img)
    monkeypatch.setattr(sys, 'argv', ['infer.py', DET, evil, str(img),
                                      '--out-dir', str(tmp_path / 'pred')])
    with pytest.raises(UntrustedCheckpointError):
        runpy.run_path(osp.join(ROOT, 'tools/infer.py'), run_name='__main__')
    assert not marker.exists()


def test_no_direct_torch_load_in_project_code():
    """Every checkpoint read goes through projects.compat.safe_torch_load
    (or mmengine's CheckpointLoader, which it replaces)."""
    out = subprocess.run(
        ['grep', '-rnE', r'torch\.load\(|pickle\.loads?\(|allow_pickle=True',
         'projects', 'tools', '--include=*.py'],
        cwd=ROOT, capture_output=True, text=True)
    hits = [ln for ln in out.stdout.splitlines()
            if not ln.startswith('projects/compat/checkpoint.py')]
    assert hits == []


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


@pytest.fixture(scope='module')
def labeled(tmp_path_factory):
    from det_helpers import make_split

    from projects.detection.datasets.competition import convert_to_file
    root = tmp_path_factory.mktemp('labeled')
    make_split(str(root), 'training', range(1, 5), size=(64, 96), seed=3)
    convert_to_file(str(root), 'training',
                    str(root / 'annotations/training.json'), workers=0)
    return root


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


# ------------------------------------------------------------- disk full
def _mount_tmpfs(path, size_mb):
    path.mkdir()
    if os.geteuid() != 0:
        return False
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size_mb}M',
                          'tmpfs', str(path)], capture_output=True)
    return res.returncode == 0


def test_disk_full_during_checkpoint_save(tmp_path, unlabeled, monkeypatch):
    """A real training run whose second checkpoint does not fit: a clear
    ENOSPC error, the first checkpoint and last_checkpoint intact. On a
    small tmpfs when this user may mount one, otherwise an injected
    ENOSPC in the middle of the write."""
    probe = tmp_path / 'probe'
    runner = vicreg_runner(tmp_path, unlabeled, probe, epochs=1)
    runner.train()
    size = (probe / 'epoch_1.pth').stat().st_size
    work = tmp_path / 'work'
    mounted = _mount_tmpfs(work, int(size * 1.6 / 2**20) + 1)
    try:
        if not mounted:
            import projects.compat.atomic_io as aio
            real_fdopen = os.fdopen

            def fdopen(fd, mode='r', *a, **k):
                name = os.readlink(f'/proc/self/fd/{fd}')
                f = real_fdopen(fd, mode, *a, **k)
                return DiskFullFile(f) if '.epoch_2.pth.' in name else f

            monkeypatch.setattr(aio.os, 'fdopen', fdopen)
        runner = vicreg_runner(tmp_path, unlabeled, work, epochs=2)
        with pytest.raises(OSError) as err:
            runner.train()
        assert err.value.errno == errno.ENOSPC
        assert 'No space left on device' in str(err.value)
        names = sorted(os.listdir(work))
        assert 'epoch_1.pth' in names and 'epoch_2.pth' not in names
        assert not [n for n in names if n.endswith('.tmp')]
        assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')
        ckpt = CheckpointLoader.load_checkpoint(str(work / 'epoch_1.pth'))
        assert ckpt['meta']['epoch'] == 1
    finally:
        for h in list(runner.logger.handlers):  # the log file is in `work`
            if isinstance(h, logging.FileHandler):
                h.close()
                runner.logger.removeHandler(h)
        if mounted:
            subprocess.run(['umount', '-l', str(work)], check=False)
    print(f'disk full: {"tmpfs" if mounted else "injected ENOSPC"}')


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


# ------------------------------------------------------------- data faults
def _jpeg(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, 'JPEG', quality=95, **kw)
    return buf.getvalue()


def _odd_files(rng):
    """name -> (bytes, loadable by the training pipeline)."""
    # 64x48 stored pixels, a bright object under the label's box
    rgb = rng.integers(0, 40, (48, 64, 3), dtype=np.uint8)
    rgb[6:40, 4:30] = (60, 200, 240)
    good = _jpeg(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    files = {
        'zero.jpg': (b'', False),
        'truncated.jpg': (good[:len(good) // 2], False),
        'text.jpg': (b'this is not an image\n' * 10, False),
        'png_named.jpg': (None, True),  # wrong extension
        'gray.png': (None, True),
        'rgba.png': (None, True),
        'sixteen.png': (None, True),
        'cmyk.jpg': (None, True),
        'exif.jpg': (_jpeg(rgb, exif=exif), True),
    }
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, 'PNG')
    files['png_named.jpg'] = (buf.getvalue(), True)
    for name, img in [
            ('gray.png', Image.fromarray(rgb[..., 0])),
            ('rgba.png', Image.fromarray(np.dstack([rgb, rgb[..., :1]]))),
            ('sixteen.png', Image.fromarray(
                rgb[..., 0].astype(np.uint16) * 257)),
    ]:
        buf = io.BytesIO()
        img.save(buf, 'PNG')
        files[name] = (buf.getvalue(), True)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert('CMYK').save(buf, 'JPEG')
    files['cmyk.jpg'] = (buf.getvalue(), True)
    return files


def test_unlabeled_folder_bad_and_odd_files(tmp_path):
    from mmengine.registry import init_default_scope

    from projects.vicreg.datasets import UnlabeledImageFolder
    init_default_scope('mmpretrain')
    files = _odd_files(np.random.default_rng(0))
    for name, (data, _) in files.items():
        (tmp_path / name).write_bytes(data)
    cfg = load_config(VICREG, work_dir=str(tmp_path / 'w'))
    ds = UnlabeledImageFolder(data_root=str(tmp_path), listing_cache=None,
                              pipeline=cfg.train_pipeline)
    names = [osp.basename(ds.get_data_info(i)['img_path'])
             for i in range(len(ds))]
    assert sorted(names) == sorted(files)
    for i, name in enumerate(names):
        out = ds.prepare_data(i)
        if files[name][1]:
            assert out is not None, name
            views = out['inputs']
            assert [tuple(v.shape) for v in views] == [(3, 64, 64)] * 2
        else:
            assert out is None, name
    assert {osp.basename(p) for p in ds.bad_files} == {
        n for n, (_, ok) in files.items() if not ok}
    assert ds.num_skipped == 3
    # __getitem__ never fails: bad indices draw another file
    for i in range(len(ds)):
        assert ds[i] is not None


def test_labeled_set_bad_and_odd_images(tmp_path):
    """Odd formats are converted and load with the boxes in place; broken
    files are skipped and reported; EXIF-rotated images keep the stored
    orientation in training (the labels' frame) and are reported."""
    from det_helpers import yaml_text
    from mmengine.registry import init_default_scope

    from projects.detection.datasets.competition import convert_split
    init_default_scope('mmdet')
    rng = np.random.default_rng(1)
    files = _odd_files(rng)
    images = tmp_path / 'training' / 'images'
    labels = tmp_path / 'training' / 'labels'
    images.mkdir(parents=True)
    labels.mkdir()
    numbers = {}
    box = [4, 6, 30, 40]  # in the stored 64x48 pixels
    for n, (name, (data, ok)) in enumerate(sorted(files.items()), 1):
        numbers[name] = n
        (images / f'{n}.JPEG').write_bytes(data)
        (labels / f'{n}.yml').write_text(yaml_text([box], ['dog'], (64, 48)))
    # EXIF-rotated with image_size of the rotated view -> skipped
    n_rot = len(files) + 1
    (images / f'{n_rot}.JPEG').write_bytes(files['exif.jpg'][0])
    (labels / f'{n_rot}.yml').write_text(yaml_text([box], ['dog'], (48, 64)))
    coco, report = convert_split(str(tmp_path), 'training', workers=0)
    c = report.counts
    assert c['unreadable_image'] == 3
    assert c['exif_orientation'] == 1 and c['exif_rotated_labels'] == 1
    summary = report.summary()
    for name in ('zero.jpg', 'truncated.jpg', 'text.jpg'):
        assert f'{numbers[name]}.JPEG' in summary
    assert 'OpenCV cannot decode' in summary  # the truncated one
    kept = {im['id']: im for im in coco['images']}
    assert set(kept) == {numbers[n] for n, (_, ok) in files.items() if ok}
    # every kept image loads with the training pipeline's loader at the
    # size in the json, and the box covers the same pixels
    cfg = load_config(DET, work_dir=str(tmp_path / 'w'))
    from mmcv.transforms import LoadImageFromFile
    load_cfg = dict(cfg.train_pipeline[0])
    load_cfg.pop('type')
    load = LoadImageFromFile(**load_cfg)
    for n, im in kept.items():
        out = load(dict(img_path=str(images / f'{n}.JPEG')))
        img = out['img'].astype(float)
        assert img.shape == (im['height'], im['width'], 3), n
        assert (im['width'], im['height']) == (64, 48)
        # the object is under the box (BGR: blue 240 is channel 0;
        # grayscale/16-bit copies carry the first channel, 60)
        inside, outside = img[8:38, 6:28].mean(), img[42:, 32:].mean()
        assert inside > outside + 30, (n, inside, outside)
        if n == numbers['exif.jpg']:
            assert img[8:38, 6:28, 0].mean() > 200
    anns = [a for a in coco['annotations']
            if a['image_id'] == numbers['exif.jpg']]
    assert [a['bbox'] for a in anns] == [[4, 6, 26, 34]]
    assert json.dumps(coco)  # serialisable


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
