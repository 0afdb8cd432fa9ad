"""tools/train.py -> tools/test.py -> tools/infer.py on generated data in the
competition layout (ResNet-18 demo config, CPU, a few iterations)."""
import json
import os
import re
import subprocess
import sys

import pytest
from det_helpers import (DEMO_CONFIG, fake_vicreg_checkpoint,
                         make_converted_splits)
from process_helpers import ROOT

from projects.compat.mmcv_ops import COVERED_OPS, RECORD_ENV
from projects.detection.converters import convert_to_file
from projects.detection.datasets import CLASSES
from projects.detection.evaluation.metrics.competition_coco_metric import \
    STAT_NAMES

pytestmark = pytest.mark.slow


def run(*args, timeout=900, env=None):
    res = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout,
                         env=env)
    return res, res.stdout + res.stderr


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('det_e2e')
    root = tmp / 'labeled'
    make_converted_splits(str(root), size=(128, 160))
    ckpt = tmp / 'vicreg_r18.pth'
    fake_vicreg_checkpoint(str(ckpt))
    r = f'{root}/'
    opts = [
        f'train_dataloader.dataset.data_root={r}',
        f'val_dataloader.dataset.data_root={r}',
        f'test_dataloader.dataset.data_root={r}',
        f'val_evaluator.ann_file={r}annotations/validation.json',
        f'test_evaluator.ann_file={r}annotations/validation.json',
        f'model.backbone.init_cfg.checkpoint={ckpt}',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
    ] + [f'{d}.{k}' for d in ('train_dataloader', 'val_dataloader',
                              'test_dataloader')
         for k in ('num_workers=0', 'persistent_workers=False')]
    return tmp, opts


def coco_ap(ann_file: str, dets: list) -> float:
    """Plain pycocotools AP@[.5:.95] of COCO-format detections."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        if not dets:
            return 0.0
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_train_test_infer(data):
    tmp, opts = data
    work = tmp / 'work'
    # every mmcv._ext function the three tools call, whichever backend
    ops_record = tmp / 'mmcv_ops_called.txt'
    env = dict(os.environ, **{RECORD_ENV: str(ops_record)})
    res, out = run('tools/train.py', DEMO_CONFIG, '--work-dir', work,
                   '--cfg-options', *opts, env=env)
    assert res.returncode == 0, out[-5000:]
    assert re.search(r'backbone: loaded 120/120 tensors from \S+vicreg_r18',
                     out)
    assert 'Epoch(train) [1][2/2]' in out
    assert re.search(r'mmcv ops backend: (torchvision|compiled)\n', out)
    assert 'coco/bbox_AR@1:' in out  # validation ran with our metric
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()

    test_dir = tmp / 'test'
    res, out = run('tools/test.py', DEMO_CONFIG, ckpt, '--work-dir',
                   test_dir, '--cfg-options', *opts, env=env)
    assert res.returncode == 0, out[-5000:]
    lines = (test_dir / 'validation_results.txt').read_text().splitlines()
    assert len(lines) == 13 and lines[0] == 'IoU metric: bbox'
    lines = lines[1:]
    assert lines[0].startswith(
        ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | '
        'maxDets=100 ] = ')
    assert lines[6].startswith(' Average Recall     (AR) @[ IoU=0.50:0.95 '
                               '| area=   all | maxDets=  1 ] = ')
    metrics = json.loads((test_dir / 'metrics.json').read_text())
    assert all('coco/' + k in metrics for k in STAT_NAMES)
    assert all(f'coco/bbox_AP/{c}' in metrics for c in CLASSES)
    csv_lines = (test_dir / 'per_class_ap.csv').read_text().splitlines()
    assert csv_lines[1].startswith('0,cup or mug,') and len(csv_lines) == 101
    assert (test_dir / 'per_class_ap.md').is_file()

    infer_dir = tmp / 'infer'
    res, out = run('tools/infer.py', DEMO_CONFIG, ckpt, 'val', '--out-dir',
                   infer_dir, '--score-thr', '0', '--device', 'cpu',
                   '--cfg-options', *opts, env=env)
    assert res.returncode == 0, out[-5000:]
    assert set(ops_record.read_text().split()) == set(COVERED_OPS)
    dets = json.loads((infer_dir / 'detections.json').read_text())
    assert [d['image_id'] for d in dets] == [30001, 30002, 30003]
    for d in dets:
        for det in d['detections']:
            assert det['class'] == CLASSES[det['label']]
            assert len(det['bbox']) == 4
    assert sorted(p.name for p in (infer_dir / 'vis').iterdir()) == [
        '30001.JPEG', '30002.JPEG', '30003.JPEG']


def test_infer_json_gives_the_test_ap(tmp_path):
    """tools/infer.py's detections_coco.json holds every detection the
    model returns, so pycocotools gives tools/test.py's AP from it, on the
    generated demo validation split."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.detection  # noqa: F401
    res, out = run('tools/generate_demo_data.py', '--out', tmp_path / 'demo',
                   '--num-unlabeled', '4', '--num-train', '4', '--num-val',
                   '6')
    assert res.returncode == 0, out[-3000:]
    labeled = tmp_path / 'demo' / 'labeled'
    ann = labeled / 'annotations' / 'validation.json'
    convert_to_file(str(labeled), 'validation', str(ann), workers=0)
    # A random-init detector (the scratch demo config, Kaiming init, BN at
    # its initial statistics) scores every class ~1/101: the model's
    # threshold 0 keeps its 100 detections per image for both tools.
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'epoch': 0, 'iter': 0}}, ckpt)
    r = f'{labeled}/'
    opts = [
        f'test_dataloader.dataset.data_root={r}',
        f'test_evaluator.ann_file={ann}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'model.backbone.init_cfg=None', 'model.test_cfg.rcnn.score_thr=0.0'
    ]
    res, out = run('tools/test.py', DEMO_CONFIG, ckpt, '--work-dir',
                   tmp_path / 'test', '--cfg-options', *opts,
                   f'test_evaluator.outfile_prefix={tmp_path}/test_dets')
    assert res.returncode == 0, out[-5000:]
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    res, out = run('tools/infer.py', DEMO_CONFIG, ckpt, 'val', '--out-dir',
                   tmp_path / 'infer', '--score-thr', '0.3', '--no-vis',
                   '--device', 'cpu', '--cfg-options', *opts)
    assert res.returncode == 0, out[-5000:]
    infer_coco = json.loads(
        (tmp_path / 'infer' / 'detections_coco.json').read_text())
    test_coco = json.loads((tmp_path / 'test_dets.bbox.json').read_text())
    assert len(test_coco) == 6 * 100  # max_per_img for each image
    assert len(infer_coco) == len(test_coco)
    def key(d):
        return (d['image_id'], d['category_id'], round(d['score'], 4),
                [round(v, 1) for v in d['bbox']])

    assert sorted(map(key, infer_coco)) == sorted(map(key, test_coco))
    ap = coco_ap(str(ann), infer_coco)
    print(f'AP from infer.py json {ap:.6f}, tools/test.py '
          f'{metrics["coco/bbox_mAP"]:.6f}')
    assert ap == pytest.approx(metrics['coco/bbox_mAP'], abs=1e-9)
    assert ap == pytest.approx(coco_ap(str(ann), test_coco), abs=1e-9)
    # negative control: the list cut at --score-thr (what the json held
    # before) is not the evaluated list
    cut = [d for d in infer_coco if d['score'] >= 0.3]
    assert len(cut) < len(infer_coco)


@pytest.mark.parametrize('override, message', [
    ('model.backbone.init_cfg.prefix=None',
     'missing from the file.*wrong prefix or wrong file'),
    ('model.backbone.init_cfg.checkpoint=no/such/file.pth',
     'no/such/file.pth.* does not exist'),
])
def test_bad_pretrained_stops_before_training(data, override, message):
    tmp, opts = data
    res, out = run('tools/train.py', DEMO_CONFIG, '--work-dir',
                   tmp / 'bad', '--cfg-options', *opts, override)
    assert res.returncode != 0
    assert 'PretrainedLoadError' in out
    assert re.search(message, out, re.S), out[-3000:]
    assert 'Epoch(train)' not in out
