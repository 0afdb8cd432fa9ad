"""PseudoLabelQualityHook: the matching against pycocotools' COCOeval
(an independent implementation of the same greedy matching), its errors,
and the held-out boxes the demo generator writes."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from projects.detection.engine.hooks.pseudo_label_quality_hook import (
    PseudoLabelQualityHook, load_held_out_boxes, match_counts)


def _random_case(rng, n_gt, n_det, classes=3):
    xy = rng.uniform(0, 60, (n_gt, 2))
    wh = rng.uniform(8, 40, (n_gt, 2))
    gt = np.concatenate([xy, xy + wh], 1)
    gt_labels = rng.integers(0, classes, n_gt)
    # detections: jittered copies of some ground truth plus random boxes
    src = rng.integers(0, n_gt, n_det)
    det = gt[src] + rng.normal(0, 6, (n_det, 4))
    det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
    labels = np.where(rng.random(n_det) < 0.8, gt_labels[src],
                      rng.integers(0, classes, n_det))
    scores = rng.random(n_det)
    return gt, gt_labels, det, labels, scores


def _cocoeval_matched(gt, gt_labels, det, labels, scores, thr, iou=0.5):
    """Detections scoring >= thr matched by pycocotools at IoU ``iou``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    keep = scores >= thr
    coco = COCO()
    coco.dataset = dict(
        images=[dict(id=1, width=200, height=200)],
        categories=[dict(id=c + 1) for c in range(3)],
        annotations=[dict(id=i + 1, image_id=1, category_id=int(c) + 1,
                          bbox=[*b[:2], *(b[2:] - b[:2])],
                          area=float(np.prod(b[2:] - b[:2])), iscrowd=0)
                     for i, (b, c) in enumerate(zip(gt, gt_labels))])
    coco.createIndex()
    dets = [dict(image_id=1, category_id=int(c) + 1,
                 bbox=[*b[:2], *(b[2:] - b[:2])], score=float(s))
            for b, c, s in zip(det[keep], labels[keep], scores[keep])]
    if not dets:
        return 0
    ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
    ev.params.iouThrs = np.array([iou])
    ev.params.maxDets = [1000]
    ev.params.areaRng = [[0, 1e10]]
    ev.params.areaRngLbl = ['all']
    ev.evaluate()
    return int(sum((e['dtMatches'][0] > 0).sum()
                   for e in ev.evalImgs if e is not None))


@pytest.mark.parametrize('case', range(20))
def test_matching_equals_cocoeval(case):
    rng = np.random.default_rng(case)
    gt, gt_labels, det, labels, scores = _random_case(
        rng, int(rng.integers(1, 6)), int(rng.integers(0, 12)))
    for thr in (0.0, 0.5, 0.9):
        got = match_counts(torch.tensor(det), torch.tensor(scores),
                           torch.tensor(labels), torch.tensor(gt),
                           torch.tensor(gt_labels), thr)
        assert got == dict(pseudo=int((scores >= thr).sum()),
                           matched=_cocoeval_matched(gt, gt_labels, det,
                                                     labels, scores, thr),
                           gt=len(gt))


def test_matching_sees_wrong_classes():
    """Negative control: with the labels shuffled, the counts differ from
    pycocotools' on the true labels in some case."""
    differs = 0
    for case in range(20):
        rng = np.random.default_rng(case)
        gt, gt_labels, det, labels, scores = _random_case(rng, 4, 10)
        wrong = (labels + 1) % 3
        got = match_counts(torch.tensor(det), torch.tensor(scores),
                           torch.tensor(wrong), torch.tensor(gt),
                           torch.tensor(gt_labels), 0.0)
        differs += got['matched'] != _cocoeval_matched(
            gt, gt_labels, det, labels, scores, 0.0)
    assert differs > 0


def test_each_held_out_box_matches_once():
    box = torch.tensor([[0., 0., 10., 10.]])
    twice = box.repeat(2, 1)
    got = match_counts(twice, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]),
                       box, torch.tensor([0]), 0.5)
    assert got == dict(pseudo=2, matched=1, gt=1)


def _coco_file(tmp_path, names=('cup or mug', 'dog')):
    path = tmp_path / 'boxes.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=7, file_name='sub/7.PNG')],
        annotations=[dict(id=1, image_id=7, category_id=2,
                          bbox=[1, 2, 3, 4])],
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(names)])))
    return str(path)


def test_held_out_boxes_by_file_name_and_class_name(tmp_path):
    boxes = load_held_out_boxes(_coco_file(tmp_path),
                                ['bird', 'dog', 'cup or mug'])
    b, labels = boxes['7.PNG']
    assert b.tolist() == [[1., 2., 4., 6.]] and labels.tolist() == [1]


def test_bad_held_out_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no/such.json.*unlabeled'):
        load_held_out_boxes('no/such.json', ['dog'])
    with pytest.raises(ValueError, match=r"boxes.json.*\['cup or mug'\]"):
        load_held_out_boxes(_coco_file(tmp_path), ['dog', 'bird'])


def test_hook_needs_a_recording_model(tmp_path):
    class Runner:
        model = torch.nn.Linear(1, 1)

    hook = PseudoLabelQualityHook(_coco_file(tmp_path))
    with pytest.raises(TypeError, match='RecordingSoftTeacher.*Linear'):
        hook.before_train(Runner())


def test_demo_generator_writes_the_scenes_boxes(tmp_path):
    """The boxes beside unlabeled/ are those the generator drew."""
    import importlib.util

    from process_helpers import ROOT, run_ok
    out = tmp_path / 'demo'
    run_ok([sys.executable, osp.join(ROOT, 'tools', 'generate_demo_data.py'),
            '--out', str(out), '--quiet', '--num-unlabeled', '5',
            '--num-train', '1', '--num-val', '1'])
    spec = importlib.util.spec_from_file_location(
        'generate_demo_data', osp.join(ROOT, 'tools', 'generate_demo_data.py'))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    classes = list(gen.DEMO_CLASS_NAMES)
    held = load_held_out_boxes(str(out / 'unlabeled_boxes.json'), classes)
    assert sorted(held) == [f'{i}.PNG' for i in range(5)]
    assert not list((out / 'unlabeled').glob('*.json'))  # not in the stream
    for i in range(5):
        _, boxes, labels = gen.unlabeled_sample(0, i)
        got_boxes, got_labels = held[f'{i}.PNG']
        assert got_boxes.tolist() == [list(map(float, b)) for b in boxes]
        assert got_labels.tolist() == [classes.index(n) for n in labels]
