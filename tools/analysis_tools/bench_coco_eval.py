"""COCO bbox evaluation time on a large synthetic validation set:
pycocotools (what mmdet and projects/detection/metrics.py use) vs
faster-coco-eval (``pip install faster-coco-eval==1.8.0``), interleaved,
median seconds for loadRes + evaluate + accumulate + summarize, and the 12
stats (and the per-class precision array) compared for identity.

The set: ``--images`` images, 100 categories, 1-15 ground-truth boxes per
image of all three COCO sizes (a few ``iscrowd``), and up to 100 detections
per image (mmdet's ``max_per_img``): jittered copies of the ground truth with
noisy scores/labels plus false positives, scores with ties.

    python tools/analysis_tools/bench_coco_eval.py --small   # 300 images
    python tools/analysis_tools/bench_coco_eval.py           # 5000 images

Prints one JSON line per library, then the identity/ratio line
(pycocotools s / faster-coco-eval s). faster-coco-eval missing -> a line
saying so (the ratio line is null).
"""
import argparse
import contextlib
import copy
import functools
import io
import json
import statistics
import time

import numpy as np


def make_dataset(num_images, num_classes=100, dets_per_image=100, seed=0):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    aid = 1
    for img_id in range(1, num_images + 1):
        H, W = 224 + 32 * int(rng.integers(0, 20)), 224 + 32 * int(
            rng.integers(0, 20))
        images.append(dict(id=img_id, width=W, height=H,
                           file_name=f'{img_id}.png'))
        gts = []
        for _ in range(int(rng.integers(1, 16))):
            side = float(np.exp(rng.uniform(np.log(8), np.log(min(H, W)))))
            ar = float(np.exp(rng.uniform(-0.7, 0.7)))
            w = min(W - 1.0, side * ar)
            h = min(H - 1.0, side / ar)
            x = float(rng.uniform(0, W - w))
            y = float(rng.uniform(0, H - h))
            cat = int(rng.integers(1, num_classes + 1))
            crowd = int(rng.random() < 0.02)
            anns.append(dict(id=aid, image_id=img_id, category_id=cat,
                             bbox=[x, y, w, h], area=w * h, iscrowd=crowd))
            aid += 1
            gts.append((x, y, w, h, cat))
        n_det = int(rng.integers(dets_per_image // 2, dets_per_image + 1))
        for k in range(n_det):
            if k < 3 * len(gts):
                x, y, w, h, cat = gts[k % len(gts)]
                j = rng.normal(0, 0.1, 4) * [w, h, w, h]
                x, y = x + j[0], y + j[1]
                w, h = max(1.0, w + j[2]), max(1.0, h + j[3])
                if rng.random() < 0.1:
                    cat = int(rng.integers(1, num_classes + 1))
                score = float(np.clip(rng.beta(5, 2), 0.05, 1))
            else:
                w, h = rng.uniform(4, W / 2), rng.uniform(4, H / 2)
                x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
                cat = int(rng.integers(1, num_classes + 1))
                score = float(rng.beta(1, 6))
            # round to 3 decimals as mmdet's results2json writes floats;
            # this also creates score ties (stable-sort behaviour matters)
            dets.append(dict(image_id=img_id, category_id=cat,
                             bbox=[round(float(v), 3) for v in (x, y, w, h)],
                             score=round(score, 3)))
    cats = [dict(id=c, name=f'c{c}') for c in range(1, num_classes + 1)]
    return dict(images=images, annotations=anns, categories=cats), dets


def _run(coco_cls, eval_cls, gt_dict, dets):
    """Seconds for loadRes + evaluate + accumulate + summarize, the 12
    stats and the accumulated precision array."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = coco_cls()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        t0 = time.perf_counter()
        dt = gt.loadRes(copy.deepcopy(dets))
        ev = eval_cls(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t = time.perf_counter() - t0
    return t, np.asarray(ev.stats), np.asarray(ev.eval['precision'])


def run_pycocotools(gt_dict, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    return _run(COCO, COCOeval, gt_dict, dets)


def run_faster(gt_dict, dets):
    from faster_coco_eval import COCO, COCOeval_faster
    return _run(COCO, functools.partial(COCOeval_faster,
                                        print_function=print),
                gt_dict, dets)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--small', action='store_true')
    parser.add_argument('--images', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    args = parser.parse_args()
    images = args.images or (300 if args.small else 5000)
    rounds = args.rounds or 3
    gt, dets = make_dataset(images)
    runners = dict(pycocotools=run_pycocotools)
    try:
        import faster_coco_eval
        runners['faster_coco_eval'] = run_faster
        fce_version = faster_coco_eval.__version__
    except ImportError:
        fce_version = None
        print(json.dumps(dict(bench='coco_eval', faster_coco_eval=None,
                              note='pip install faster-coco-eval==1.8.0')),
              flush=True)
    times = {k: [] for k in runners}
    out = {}
    for r in range(rounds):
        order = list(runners) if r % 2 == 0 else list(runners)[::-1]
        for name in order:
            t, stats, prec = runners[name](gt, dets)
            times[name].append(t)
            out[name] = (stats, prec)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name in runners:
        print(json.dumps(dict(
            bench='coco_eval', lib=name, s=round(med[name], 3),
            runs_s=[round(t, 3) for t in times[name]], images=images,
            gt=len(gt['annotations']), dets=len(dets),
            stats=[float(s) for s in out[name][0]],
            version=fce_version if name != 'pycocotools' else None)),
              flush=True)
    if 'faster_coco_eval' in runners:
        a, b = out['pycocotools'], out['faster_coco_eval']
        diff = np.abs(a[0] - b[0])
        pa, pb = a[1], b[1]
        print(json.dumps(dict(
            bench='coco_eval', metric='ratio',
            pycocotools_over_faster=round(
                med['pycocotools'] / med['faster_coco_eval'], 2),
            stats_identical=bool(np.array_equal(a[0], b[0])),
            stats_max_abs_diff=float(diff.max()),
            stats_differing=[int(i) for i in np.nonzero(diff)[0]],
            precision_identical=bool(pa.shape == pb.shape
                                     and np.array_equal(pa, pb)),
            precision_max_abs_diff=float(np.abs(pa - pb).max())
            if pa.shape == pb.shape else None)), flush=True)
    else:
        print(json.dumps(dict(bench='coco_eval', metric='ratio',
                              pycocotools_over_faster=None)), flush=True)


if __name__ == '__main__':
    main()
