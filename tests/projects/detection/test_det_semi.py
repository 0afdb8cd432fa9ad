"""Soft Teacher (mmdet SoftTeacher + MeanTeacherHook) configs of
configs/soft_teacher/: build, run on CPU (1 and 2 gloo processes), the
unlabeled stream reads no label, the teacher is the EMA of the student, and
a checkpoint evaluates with tools/test.py (teacher by default)."""
import builtins
import glob
import json
import os
import os.path as osp
import re
import sys

import pytest
import torch
from det_helpers import (fake_vicreg_checkpoint, make_converted_splits,
                         write_image)
from mmengine.hooks import Hook
from process_helpers import ROOT, free_port, run_ok

from projects.launch import build_runner, load_config

SEMI_DIR = osp.join(ROOT, 'configs', 'soft_teacher')
SEMI_CONFIGS = sorted(glob.glob(osp.join(SEMI_DIR, 'soft-teacher_*.py')))
DEMO = osp.join(
    SEMI_DIR, 'soft-teacher_faster-rcnn_r18-vicreg-pre_fpn_1xb4-150it_'
    'competition-demo.py')
LABEL_EXTS = ('.yml', '.yaml', '.json', '.txt.label')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Labeled splits (COCO jsons) and an unlabeled folder that also holds
    label-like files whose reading fails (garbage YAML/JSON)."""
    tmp = tmp_path_factory.mktemp('semi')
    root = tmp / 'labeled'
    make_converted_splits(str(root), size=(96, 128))
    unlabeled = tmp / 'unlabeled'
    for i in range(6):
        write_image(str(unlabeled / 'images' / f'{i}.PNG'), 96 + 8 * i, 96,
                    seed=100 + i)
        for ext in ('.yml', '.json'):  # a label next to each image
            (unlabeled / 'images' / f'{i}{ext}').write_text(': [ {{ garbage')
        (unlabeled / 'labels').mkdir(exist_ok=True)
        (unlabeled / 'labels' / f'{i}.yml').write_text(': [ {{ garbage')
    # held-out boxes of the unlabeled images, beside the folder (as the
    # demo generator writes them), for PseudoLabelQualityHook
    (tmp / 'unlabeled_boxes.json').write_text(json.dumps(dict(
        images=[dict(id=i, file_name=f'{i}.PNG') for i in range(6)],
        annotations=[dict(id=i + 1, image_id=i, category_id=1,
                          bbox=[10, 10, 40, 30]) for i in range(6)],
        categories=[dict(id=1, name='cup or mug')])))
    ckpts = {d: str(tmp / f'vicreg_r{d}.pth') for d in (18, 50)}
    for depth, path in ckpts.items():
        fake_vicreg_checkpoint(path, depth=depth)
    return tmp, ckpts


def semi_options(tmp, ckpt=None, iters=2, batch=2):
    r = f'{tmp}/labeled/'
    opts = {
        'train_dataloader.dataset.datasets.0.data_root': r,
        'train_dataloader.dataset.datasets.1.data_root': f'{tmp}/unlabeled/',
        'train_dataloader.dataset.datasets.1.img_size': None,
        'train_dataloader.dataset.datasets.1.listing_cache': None,
        'train_dataloader.batch_size': batch,
        'train_dataloader.sampler.batch_size': batch,
        'val_dataloader.dataset.data_root': r,
        'test_dataloader.dataset.data_root': r,
        'val_evaluator.ann_file': f'{r}annotations/validation.json',
        'test_evaluator.ann_file': f'{r}annotations/validation.json',
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 1,
    }
    for d in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{d}.num_workers'] = 0
        opts[f'{d}.persistent_workers'] = False
    if ckpt:
        opts['model.detector.backbone.init_cfg.checkpoint'] = ckpt
    return opts


def as_cli(opts: dict) -> list:
    return [f'{k}={"None" if v is None else v}' for k, v in opts.items()]


def _depth(config: str) -> int:
    return 50 if '_r50-' in osp.basename(config) else 18


def _burn_in(config: str) -> bool:
    """The demo's 6-class config starts from a detector (load_from)."""
    return config.endswith('_demo-6cls.py')


def test_every_semi_config_is_soft_teacher_on_both_streams():
    """Structure of every config (cheap: no model is built)."""
    assert len(SEMI_CONFIGS) >= 5, SEMI_CONFIGS
    for path in SEMI_CONFIGS:
        cfg = load_config(path)
        name = osp.basename(path)
        assert cfg.model.type in ('SoftTeacher', 'RecordingSoftTeacher')
        assert cfg.model.semi_test_cfg.predict_on == 'teacher', name
        assert cfg.model.detector.roi_head.bbox_head.num_classes == (
            6 if _burn_in(path) else 100), name
        init = cfg.model.detector.backbone.init_cfg
        assert (init is None) == ('scratch' in name or _burn_in(path)), name
        hooks = [h.type for h in cfg.custom_hooks]
        assert ('PseudoLabelQualityHook' in hooks) == (
            cfg.model.type == 'RecordingSoftTeacher'), name
        assert 'MeanTeacherHook' in hooks and \
            'PretrainedBackboneCheckHook' in hooks, name
        loader = cfg.train_dataloader
        assert loader.sampler.type == 'MultiSourceSampler'
        assert loader.sampler.batch_size == loader.batch_size, name
        labeled, unlabeled = loader.dataset.datasets
        assert labeled.type == 'CompetitionDataset' and labeled.ann_file
        assert unlabeled.type == 'UnlabeledDetDataset'
        assert not unlabeled.get('ann_file'), name
        assert [t.type for t in unlabeled.pipeline][:2] == [
            'LoadImageFromFile', 'LoadEmptyAnnotations']
        assert loader.dataset.ignore_keys == ['classes', 'palette'], name
        assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    by_name = {osp.basename(p): load_config(p) for p in SEMI_CONFIGS}
    ratio = [c.train_dataloader.sampler.source_ratio
             for n, c in by_name.items() if 'unsup4' in n]
    assert ratio == [[1, 4]]
    thr = [c.model.semi_train_cfg.cls_pseudo_thr
           for n, c in by_name.items() if 'thr0.7' in n]
    assert thr == [0.7]


def shrink_resizes(node, scale=((128, 96), (128, 128))) -> int:
    """Every RandomResize/Resize below ``node`` to tiny images (CPU)."""
    n = 0
    if isinstance(node, dict):
        if node.get('type') in ('RandomResize', 'Resize'):
            node['scale'] = list(scale) if node['type'] == 'RandomResize' \
                else scale[-1]
            n += 1
        for v in node.values():
            n += shrink_resizes(v, scale)
    elif isinstance(node, (list, tuple)):
        for v in node:
            n += shrink_resizes(v, scale)
    return n


class RecordEMA(Hook):
    """Student weights after init and after every step (float64)."""
    priority = 'LOWEST'

    def __init__(self):
        self.students, self.teacher0 = [], None

    @staticmethod
    def _params(module):
        return {k: v.detach().double().clone()
                for k, v in module.named_parameters()}

    def before_train(self, runner):
        self.teacher0 = self._params(runner.model.teacher)
        self.student0 = self._params(runner.model.student)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.students.append(self._params(runner.model.student))


@pytest.mark.slow
@pytest.mark.parametrize('config', SEMI_CONFIGS,
                         ids=[osp.basename(p)[13:-3] for p in SEMI_CONFIGS])
def test_semi_config_trains_on_cpu(data, tmp_path, config):
    """Two iterations of every config (tiny images; the r50 ones with a
    ResNet-50 VICReg-style checkpoint), then the teacher is checked against
    the EMA formula teacher_k = (1 - m) teacher_{k-1} + m student_k,
    teacher_0 = student_0 (mmdet MeanTeacherHook)."""
    tmp, ckpts = data
    opts = semi_options(tmp, ckpts[_depth(config)], iters=2)
    if 'scratch' in config or _burn_in(config):  # random init here
        del opts['model.detector.backbone.init_cfg.checkpoint']
    cfg = load_config(config, opts, work_dir=str(tmp_path / 'work'))
    quality = [h for h in cfg.custom_hooks
               if h.type == 'PseudoLabelQualityHook']
    for h in quality:
        h.ann_file, h.interval = str(tmp / 'unlabeled_boxes.json'), 1
    shrink_resizes(cfg.train_dataloader.dataset)  # r50 configs: 400-1200 px
    momentum = 0.3  # large: 2 steps move the teacher measurably
    for h in cfg.custom_hooks:
        if h.type == 'MeanTeacherHook':
            h.momentum = momentum
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    # no checkpoint: the r50 ones hold teacher, student and momentum (0.5 GB)
    cfg.default_hooks.checkpoint = None
    cfg.param_scheduler = None  # no warm-up: 2 steps move the student
    record = RecordEMA()
    runner = build_runner(cfg)
    assert type(runner.cfg).__name__ == 'FormatOnceConfig'  # yapf once
    runner.register_hook(record)
    runner.train()
    assert len(record.students) == 2
    if quality:  # the pseudo boxes were scored against the held-out ones
        logged = runner.message_hub.log_scalars
        assert {'train/pseudo_recall@0.5', 'train/pseudo_recall@0.9',
                'train/pseudo_boxes@0.5'} <= set(logged), set(logged)
        assert logged['train/pseudo_recall@0.5'].data[0].size == 2
    teacher = {k: v.detach().double()
               for k, v in runner.model.teacher.named_parameters()}
    # teacher starts as the student (both initialised from the checkpoint)
    for k, v in record.teacher0.items():
        torch.testing.assert_close(v, record.student0[k])
    ref = dict(record.student0)
    wrong = dict(record.student0)  # negative control: m and 1-m swapped
    for student in record.students:
        ref = {k: (1 - momentum) * ref[k] + momentum * student[k]
               for k in ref}
        wrong = {k: momentum * wrong[k] + (1 - momentum) * student[k]
                 for k in wrong}
    moved = [k for k in ref
             if not torch.equal(record.student0[k], record.students[-1][k])]
    assert len(moved) > 0.5 * len(ref)  # the student did train
    for k in ref:
        torch.testing.assert_close(teacher[k], ref[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(teacher[k], wrong[k], rtol=1e-5,
                                  atol=1e-6) for k in moved)


def test_unlabeled_stream_reads_no_label(data, monkeypatch):
    """The unlabeled dataset lists and loads images only: the folder holds
    garbage label files, and any open() of a label-like file fails."""
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    tmp, _ = data
    cfg = load_config(DEMO, semi_options(tmp))
    unlabeled_cfg = cfg.train_dataloader.dataset.datasets[1]

    real_open, opened = builtins.open, []

    def guarded_open(file, *args, **kwargs):
        name = os.fspath(file) if isinstance(file, (str, os.PathLike)) \
            else ''
        opened.append(name)
        if name.endswith(LABEL_EXTS):
            raise AssertionError(f'label file read: {name}')
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', guarded_open)
    ds = DATASETS.build(unlabeled_cfg)
    assert len(ds) == 6
    assert all(d['img_path'].endswith('.PNG') for d in ds.data_list)
    for i in range(len(ds)):
        item = ds[i]
        for branch in ('unsup_teacher', 'unsup_student'):
            sample = item['data_samples'][branch]
            assert len(sample.gt_instances) == 0
            assert sample.img_path.endswith(f'{i}.PNG')
    assert any(p.endswith('.PNG') for p in opened)  # the spy sees reads
    # negative control: reading a label there does fail under the guard
    with pytest.raises(AssertionError, match='label file read'):
        open(osp.join(tmp, 'unlabeled', 'labels', '0.yml'))
    monkeypatch.setattr(builtins, 'open', real_open)
    # ... and the files are unreadable as labels anyway
    with pytest.raises(Exception):
        CocoDataset(ann_file=str(tmp / 'unlabeled' / 'images' / '0.json'),
                    data_prefix=dict(img=str(tmp / 'unlabeled' / 'images')),
                    pipeline=[])
    # an annotation file given to the unlabeled dataset is refused
    with pytest.raises(ValueError, match='reads no annotation file'):
        DATASETS.build(dict(unlabeled_cfg, ann_file='labels.json'))
    with pytest.raises(FileNotFoundError, match='datasets.1.data_root'):
        DATASETS.build(dict(unlabeled_cfg, data_root=str(tmp / 'nowhere')))


@pytest.mark.slow
def test_two_gloo_processes_then_test_and_infer(data, tmp_path):
    """tools/dist_train.sh with 2 CPU processes (gloo), then the checkpoint
    evaluates with tools/test.py (the teacher: 12-number
    validation_results.txt) and detects with tools/infer.py."""
    tmp, ckpts = data
    opts = as_cli(semi_options(tmp, ckpts[18], iters=2))
    work = tmp_path / 'work'
    log = run_ok(['bash', 'tools/dist_train.sh', DEMO, '2', '--work-dir',
                 str(work), '--cfg-options', *opts], PORT=str(free_port()))
    assert re.search(r'backbone: loaded 120/120 tensors .*student and '
                     r'teacher', log)
    assert re.search(r'Iter\(train\) \[2/2\].*unsup_loss_cls', log)
    assert 'coco/bbox_AR@100' in log  # validation of the teacher ran
    ckpt = (work / 'last_checkpoint').read_text().strip()
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    keys = state['state_dict']
    assert any(k.startswith('teacher.') for k in keys)
    assert any(k.startswith('student.') for k in keys)

    test_dir = tmp_path / 'test'
    run_ok([sys.executable, 'tools/test.py', DEMO, ckpt, '--work-dir',
           str(test_dir), '--cfg-options', *opts])
    lines = (test_dir / 'validation_results.txt').read_text().splitlines()
    # the header line, then the 12-number summary
    assert lines[0] == 'IoU metric: bbox' and len(lines) == 13
    metrics = json.loads((test_dir / 'metrics.json').read_text())
    assert 'coco/bbox_mAP' in metrics

    infer_dir = tmp_path / 'infer'
    run_ok([sys.executable, 'tools/infer.py', DEMO, ckpt, 'val', '--out-dir',
           str(infer_dir), '--score-thr', '0', '--device', 'cpu', '--no-vis',
           '--cfg-options', *opts])
    dets = json.loads((infer_dir / 'detections.json').read_text())
    assert [d['image_id'] for d in dets] == [30001, 30002, 30003]


def _train_dataset(tmp):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = load_config(DEMO, semi_options(tmp))
    return DATASETS.build(cfg.train_dataloader.dataset), cfg


@pytest.mark.parametrize('ratio, batch, per_source', [
    ([1, 1], 4, [2, 2]), ([1, 4], 5, [1, 4]), ([1, 2], 6, [2, 4])])
def test_every_batch_has_the_configured_mix(data, ratio, batch, per_source):
    """source_ratio is what each batch holds: [labeled, unlabeled]."""
    from itertools import islice

    from mmdet.registry import DATA_SAMPLERS

    from projects.detection import CLASSES
    tmp, _ = data
    ds, _ = _train_dataset(tmp)
    # the mix has the labeled set's classes (the unlabeled set has none)
    assert ds.metainfo['classes'] == CLASSES
    assert 'classes' not in ds.datasets[1].metainfo
    n_labeled = ds.cumulative_sizes[0]
    sampler = DATA_SAMPLERS.build(dict(
        type='MultiSourceSampler', dataset=ds, batch_size=batch,
        source_ratio=ratio, seed=0))
    idx = list(islice(iter(sampler), 10 * batch))
    for b in range(10):
        chunk = idx[b * batch:(b + 1) * batch]
        got = [sum(i < n_labeled for i in chunk),
               sum(i >= n_labeled for i in chunk)]
        assert got == per_source
    # negative control: a different ratio gives a different mix
    assert per_source != [batch // 2 + 1, batch - batch // 2 - 1]


def test_group_sampler_would_starve_on_square_unlabeled_images(data):
    """Why the configs use MultiSourceSampler: the unlabeled images here
    (like the competition's 224x224) have no portrait image, the labeled
    ones do, so GroupMultiSourceSampler's portrait group has an empty
    unlabeled source, which it then searches forever
    (open-mmlab/mmdetection#12327)."""
    from mmdet.registry import DATA_SAMPLERS
    tmp, _ = data
    ds, _ = _train_dataset(tmp)
    sampler = DATA_SAMPLERS.build(dict(
        type='GroupMultiSourceSampler', dataset=ds, batch_size=4,
        source_ratio=[1, 1], seed=0))
    labeled, unlabeled = sampler.group2size_per_source
    assert labeled[0] > 0 and unlabeled[0] == 0  # portrait: labeled only
    assert sampler.group_ratio[0] > 0  # ... and that group gets drawn


def test_backbone_check_covers_student_and_teacher(data):
    """PretrainedBackboneCheckHook on a SoftTeacher: both backbones must
    hold the VICReg tensors; a teacher left at random init is caught."""
    import types

    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from projects.detection.engine.hooks.pretrained_backbone_check_hook import (
        PretrainedBackboneCheckHook, PretrainedLoadError)
    init_default_scope('mmdet')
    tmp, ckpts = data
    cfg = load_config(DEMO, semi_options(tmp, ckpts[18]))
    model = MODELS.build(cfg.model)
    model.init_weights()
    hook = PretrainedBackboneCheckHook()
    runner = types.SimpleNamespace(model=model, iter=0)
    hook.before_train(runner)  # both loaded
    with torch.no_grad():  # negative control: the teacher's differs
        model.teacher.backbone.conv1.weight.add_(1.0)
    with pytest.raises(PretrainedLoadError, match='differ from the file'):
        hook.before_train(runner)


def test_class_count_checked_inside_the_detector():
    """projects.launch.config_check sees SoftTeacher's inner head."""
    from projects.launch import ConfigCheckError
    from projects.launch.config_check import check_num_classes
    cfg = load_config(DEMO, {
        'model.detector.roi_head.bbox_head.num_classes': 80})
    with pytest.raises(ConfigCheckError,
                       match='detector.roi_head.bbox_head.num_classes = 80'):
        check_num_classes(cfg)
    check_num_classes(load_config(DEMO))  # 100 = 100: passes
