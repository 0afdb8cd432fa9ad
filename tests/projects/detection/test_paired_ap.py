"""The image-weighted COCO AP/AR100 behind the demo's paired bootstrap:
with every image once it must equal pycocotools' own summary; a resample
must equal pycocotools on the duplicated images; the bootstrap must find a
real difference and not a null one."""
import json
import os.path as osp

import numpy as np
import pytest

from projects.detection.evaluation.paired_ap import (ImageWeightedCOCO,
                                                     paired_bootstrap)


def _gt(n_img, rng, n_cat=3):
    images, anns = [], []
    for i in range(n_img):
        images.append(dict(id=i + 1, width=100, height=100,
                           file_name=f'{i}.jpg'))
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(10, 40, 2)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=int(rng.integers(1, n_cat + 1)),
                             bbox=[x, y, w, h], area=w * h, iscrowd=0))
    cats = [dict(id=c + 1, name=f'c{c}') for c in range(n_cat)]
    return dict(images=images, annotations=anns, categories=cats)


def _dets(gt, rng, noise, miss):
    """Noisy copies of the GT boxes (some dropped, some mislabeled) plus
    false positives, with scores."""
    out = []
    for a in gt['annotations']:
        if rng.random() < miss:
            continue
        x, y, w, h = a['bbox']
        jitter = rng.normal(0, noise, 4) * [w, h, w, h]
        cat = a['category_id'] if rng.random() > 0.2 else int(
            rng.integers(1, 4))
        out.append(dict(image_id=a['image_id'], category_id=cat,
                        bbox=list(np.add([x, y, w, h], jitter).clip(1)),
                        score=float(rng.uniform(0.3, 1.0))))
    for img in gt['images']:
        for _ in range(2):
            out.append(dict(image_id=img['id'],
                            category_id=int(rng.integers(1, 4)),
                            bbox=list(rng.uniform(5, 50, 4)),
                            score=float(rng.uniform(0, 0.6))))
    return out


def _write(tmp_path, name, obj):
    path = osp.join(tmp_path, name)
    with open(path, 'w') as f:
        json.dump(obj, f)
    return path


def _pycocotools(gt_path, dt_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(gt_path)
    ev = COCOeval(gt, gt.loadRes(dt_path), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats[0], ev.stats[8]  # AP, AR@100


@pytest.fixture
def coco_pair(tmp_path):
    rng = np.random.default_rng(0)
    gt = _gt(40, rng)
    gt_path = _write(tmp_path, 'gt.json', gt)
    good = _write(tmp_path, 'good.json', _dets(gt, rng, 0.03, 0.1))
    bad = _write(tmp_path, 'bad.json', _dets(gt, rng, 0.25, 0.5))
    return gt, gt_path, good, bad


def test_all_images_once_is_pycocotools(coco_pair):
    _, gt_path, good, bad = coco_pair
    for dt in (good, bad):
        ours = ImageWeightedCOCO(gt_path, dt).metrics(np.ones(40))
        ap, ar = _pycocotools(gt_path, dt)
        assert ours['bbox_mAP'] == pytest.approx(ap, abs=1e-9)
        assert ours['bbox_AR@100'] == pytest.approx(ar, abs=1e-9)


def test_weights_equal_duplicated_images(coco_pair, tmp_path):
    """Weight 2 on an image == pycocotools on a set with it twice."""
    gt, gt_path, good, _ = coco_pair
    weights = np.ones(40)
    weights[:10] = 2
    weights[30:] = 0
    ours = ImageWeightedCOCO(gt_path, good).metrics(weights)
    # the same multiset written out: images 1-10 get a copy with new ids
    dets = json.load(open(good))
    keep = [img for img in gt['images'] if img['id'] <= 30]
    anns = [a for a in gt['annotations'] if a['image_id'] <= 30]
    dup_imgs = [dict(img, id=img['id'] + 1000) for img in keep[:10]]
    dup_anns = [dict(a, id=a['id'] + 10000, image_id=a['image_id'] + 1000)
                for a in anns if a['image_id'] <= 10]
    dup_dets = [dict(d, image_id=d['image_id'] + 1000) for d in dets
                if d['image_id'] <= 10]
    gt2 = dict(gt, images=keep + dup_imgs, annotations=anns + dup_anns)
    dets2 = [d for d in dets if d['image_id'] <= 30] + dup_dets
    ap, ar = _pycocotools(_write(tmp_path, 'gt2.json', gt2),
                          _write(tmp_path, 'dt2.json', dets2))
    # score ties across the copies may order differently: tiny tolerance
    assert ours['bbox_mAP'] == pytest.approx(ap, abs=1e-3)
    assert ours['bbox_AR@100'] == pytest.approx(ar, abs=1e-9)


def test_bootstrap_detects_a_real_difference_not_a_null_one(coco_pair):
    _, gt_path, good, bad = coco_pair
    a, b = ImageWeightedCOCO(gt_path, good), ImageWeightedCOCO(gt_path, bad)
    real = paired_bootstrap(a, b, num_resamples=200)
    assert real['bbox_mAP']['diff'] > 0 and real['bbox_mAP']['p'] < 0.05
    # negative control: a detector against itself
    same = paired_bootstrap(a, ImageWeightedCOCO(gt_path, good),
                            num_resamples=200)
    assert same['bbox_mAP']['diff'] == 0 and same['bbox_mAP']['p'] == 1.0


def test_bootstrap_refuses_different_image_sets(coco_pair, tmp_path):
    gt, gt_path, good, _ = coco_pair
    fewer = dict(gt, images=gt['images'][:20], annotations=[
        a for a in gt['annotations'] if a['image_id'] <= 20])
    dets = [d for d in json.load(open(good)) if d['image_id'] <= 20]
    other = ImageWeightedCOCO(_write(tmp_path, 'gt3.json', fewer),
                              _write(tmp_path, 'dt3.json', dets))
    with pytest.raises(ValueError, match='different validation images'):
        paired_bootstrap(ImageWeightedCOCO(gt_path, good), other)
