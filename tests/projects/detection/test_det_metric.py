"""Our COCO evaluation == pycocotools COCOeval on GT built from the YAMLs."""
import contextlib
import glob
import io
import json
import math
import os.path as osp
import random

import numpy as np
import pytest
import torch
import yaml
from det_helpers import make_split
from pycocotools.coco import COCO as RefCOCO
from pycocotools.cocoeval import COCOeval as RefCOCOeval

from projects.detection.converters import convert_to_file
from projects.detection.datasets import CLASSES
from projects.detection.evaluation.metrics.competition_coco_metric import (
    STAT_NAMES, CompetitionCocoMetric, format_summary, write_results)

USED = ['cup or mug', 'bird', 'person', 'starfish', 'skunk', 'tie']


def reference_gt(split_dir):
    """COCO GT straight from the YAML files, as the competition built it
    (independent of projects.detection: own category ids, no clipping)."""
    names = sorted(set(CLASSES))  # an unrelated id assignment
    cat_id = {n: 1000 + 7 * i for i, n in enumerate(names)}
    images, anns = [], []
    for path in sorted(glob.glob(osp.join(split_dir, 'labels', '*.yml'))):
        n = int(osp.splitext(osp.basename(path))[0])
        with open(path) as f:
            data = yaml.safe_load(f)
        w, h = data['image_size']
        images.append(dict(id=n, width=w, height=h, file_name=f'{n}.JPEG'))
        for (x1, y1, x2, y2), name in zip(data['bboxes'], data['labels']):
            anns.append(dict(id=len(anns) + 1, image_id=n,
                             category_id=cat_id[name],
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
    gt = RefCOCO()
    gt.dataset = dict(images=images, annotations=anns,
                      categories=[dict(id=cat_id[n], name=n) for n in names])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, cat_id


def make_predictions(items, seed=0):
    """Per image float32 (bboxes, scores, labels): jittered GT (some with the
    wrong class), misses and false positives."""
    rng = random.Random(seed)
    preds = {}
    for n, item in items.items():
        w, h = item['size']
        boxes, scores, labels = [], [], []
        for box, name in zip(item['bboxes'], item['labels']):
            if rng.random() < 0.2:
                continue  # missed
            j = [v + rng.uniform(-4, 4) for v in box]
            boxes.append(j)
            scores.append(rng.random())
            labels.append(CLASSES.index(name) if rng.random() < 0.8 else
                          CLASSES.index(rng.choice(USED)))
        for _ in range(rng.randint(0, 3)):  # false positives
            x, y = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
            boxes.append([x, y, x + rng.uniform(5, w - x),
                          y + rng.uniform(5, h - y)])
            scores.append(rng.random())
            labels.append(CLASSES.index(rng.choice(USED)))
        preds[n] = (np.array(boxes, np.float32).reshape(-1, 4),
                    np.array(scores, np.float32), np.array(labels, np.int64))
    return preds


def reference_eval(root, preds, max_dets=None):
    """pycocotools' COCOeval of ``preds`` and its summary text."""
    gt, cat_id = reference_gt(osp.join(root, 'validation'))
    dets = []
    for n, (b, s, lab) in preds.items():
        for box, score, label in zip(b.tolist(), s.tolist(), lab.tolist()):
            dets.append(dict(image_id=n, category_id=cat_id[CLASSES[label]],
                             bbox=[box[0], box[1], box[2] - box[0],
                                   box[3] - box[1]], score=score))
    with contextlib.redirect_stdout(io.StringIO()):
        ref = RefCOCOeval(gt, gt.loadRes(dets), 'bbox')
        if max_dets is not None:
            ref.params.maxDets = list(max_dets)
        ref.evaluate()
        ref.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as text:
        ref.summarize()
    return ref, text.getvalue()


def run_metric(ann_file, items, preds, **kwargs):
    metric = CompetitionCocoMetric(ann_file=ann_file, classwise=True,
                                   **kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    for n in sorted(items):
        b, s, lab = preds[n]
        w, h = items[n]['size']
        metric.process({}, [dict(
            img_id=n, ori_shape=(h, w),
            pred_instances=dict(bboxes=torch.from_numpy(b),
                                scores=torch.from_numpy(s),
                                labels=torch.from_numpy(lab)))])
    return metric.evaluate(len(items))


@pytest.fixture(scope='module')
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp('labeled')
    items = make_split(str(root), 'validation', range(30001, 30041),
                       classes=USED, size=(64, 400), max_boxes=5, seed=3)
    ann = root / 'validation.json'
    convert_to_file(str(root), 'validation', str(ann), strict=True,
                    workers=0)
    return str(root), str(ann), items


def test_equals_pycocotools(split, tmp_path):
    root, ann, items = split
    preds = make_predictions(items)
    metrics = run_metric(ann, items, preds)

    ref, ref_text = reference_eval(root, preds)

    ours = [metrics['coco/' + k] for k in STAT_NAMES]
    assert len(ours) == 12
    assert 0.05 < ours[0] < 0.95  # a non-trivial result
    np.testing.assert_allclose(ours, ref.stats, rtol=0, atol=1e-12)
    assert format_summary(ours) == ref_text

    # per class: AP@[.5:.95], all areas, 100 dets, as the reference
    names = sorted(set(CLASSES))
    for n in USED:
        k = names.index(n)
        p = ref.eval['precision'][:, :, k, 0, -1]
        assert metrics['coco/bbox_AP/' + n] == pytest.approx(
            float(np.mean(p[p > -1])), abs=1e-12)
    assert math.isnan(metrics['coco/bbox_AP/lemon'])  # no GT

    paths = write_results(metrics, str(tmp_path))
    names_written = sorted(osp.basename(p) for p in paths)
    assert names_written == ['metrics.json', 'per_class_ap.csv',
                             'per_class_ap.md', 'validation_results.txt']
    assert (tmp_path / 'validation_results.txt').read_text() == (
        'IoU metric: bbox\n' + ref_text)
    saved = json.loads((tmp_path / 'metrics.json').read_text())
    assert saved['coco/bbox_AR@1'] == pytest.approx(ref.stats[6])
    assert saved['coco/bbox_AP/lemon'] is None
    md = (tmp_path / 'per_class_ap.md').read_text().splitlines()
    assert md[2].startswith('| 0 | cup or mug | ') and len(md) == 102


def test_perfect_and_empty_predictions(split):
    root, ann, items = split
    perfect = {
        n: (np.array(it['bboxes'], np.float32),
            np.linspace(0.9, 0.5, len(it['bboxes'])).astype(np.float32),
            np.array([CLASSES.index(x) for x in it['labels']]))
        for n, it in items.items()
    }
    m = run_metric(ann, items, perfect)
    assert m['coco/bbox_mAP'] == pytest.approx(1.0)
    assert m['coco/bbox_AP/cup or mug'] == pytest.approx(1.0)  # label 0
    empty = {n: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                 np.zeros(0, np.int64)) for n in items}
    m = run_metric(ann, items, empty)
    assert m['coco/bbox_mAP'] == 0 and m['coco/bbox_AR@100'] == 0


@pytest.mark.parametrize('metric', ['bbox', ['bbox'], ('bbox', )])
def test_metric_as_str_list_or_tuple(metric):
    assert CompetitionCocoMetric(metric=metric).metrics == ['bbox']


@pytest.mark.parametrize('metric', ['segm', ('bbox', 'segm'), []])
def test_other_metrics_are_refused(metric):
    with pytest.raises(ValueError, match='bbox only'):
        CompetitionCocoMetric(metric=metric)


def test_ar_keys_follow_proposal_nums(split, tmp_path):
    """maxDets (1, 5, 20): the AR keys say @1/@5/@20 and hold pycocotools'
    numbers for those maxDets; the summary file shows them too."""
    root, ann, items = split
    preds = make_predictions(items, seed=1)
    metrics = run_metric(ann, items, preds, proposal_nums=(1, 5, 20))
    ref, ref_text = reference_eval(root, preds, max_dets=(1, 5, 20))
    names = ['bbox_AR@1', 'bbox_AR@5', 'bbox_AR@20', 'bbox_AR_s@20',
             'bbox_AR_m@20', 'bbox_AR_l@20']
    ours = [metrics['coco/' + k] for k in names]
    np.testing.assert_allclose(ours, ref.stats[6:], rtol=0, atol=1e-12)
    assert not any(k.endswith('@100') for k in metrics)
    write_results(metrics, str(tmp_path))
    assert (tmp_path / 'validation_results.txt').read_text() == (
        'IoU metric: bbox\n' + ref_text)
