"""COCO bbox evaluation time on a large synthetic validation set:
pycocotools (what mmdet and
projects/detection/evaluation/metrics/competition_coco_metric.py use) vs
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
import contextlib
import copy
import functools
import io
import os.path as osp

import harness as H
import numpy as np

HERE = osp.dirname(osp.abspath(__file__))


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


class Evaluation:
    """One library's evaluation: ``prepare()`` builds the ground-truth index
    and copies the detections (untimed), ``run()`` is the timed part
    (loadRes + evaluate + accumulate + summarize) and keeps the 12 stats and
    the accumulated precision array."""

    def __init__(self, coco_cls, eval_cls, gt_dict, dets):
        self.coco_cls, self.eval_cls = coco_cls, eval_cls
        self.gt_dict, self.dets = gt_dict, dets

    def prepare(self):
        with contextlib.redirect_stdout(io.StringIO()):
            self.gt = self.coco_cls()
            self.gt.dataset = copy.deepcopy(self.gt_dict)
            self.gt.createIndex()
        self.dets_copy = copy.deepcopy(self.dets)

    def run(self):
        with contextlib.redirect_stdout(io.StringIO()):
            dt = self.gt.loadRes(self.dets_copy)
            ev = self.eval_cls(self.gt, dt, 'bbox')
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        self.stats = np.asarray(ev.stats)
        self.precision = np.asarray(ev.eval['precision'])


def pycocotools_evaluation(gt_dict, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    return Evaluation(COCO, COCOeval, gt_dict, dets)


def faster_evaluation(gt_dict, dets):
    from faster_coco_eval import COCO, COCOeval_faster
    return Evaluation(COCO, functools.partial(COCOeval_faster,
                                              print_function=print),
                      gt_dict, dets)


def main():
    parser = H.make_parser(__doc__)
    parser.add_argument('--images', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    args = parser.parse_args()
    H.apply_preset(args, small=dict(images=300, rounds=3),
                   full=dict(images=5000, rounds=3))
    gt, dets = make_dataset(args.images)
    evals = dict(pycocotools=pycocotools_evaluation(gt, dets))
    try:
        import faster_coco_eval
        evals['faster_coco_eval'] = faster_evaluation(gt, dets)
        fce_version = faster_coco_eval.__version__
    except ImportError:
        fce_version = None
        H.emit('coco_eval', faster_coco_eval=None,
               note='pip install faster-coco-eval==1.8.0')
    times, _ = H.interleave({k: e.run for k, e in evals.items()},
                            args.rounds,
                            prepare=lambda name: evals[name].prepare())
    med = {k: H.median(v) for k, v in times.items()}
    for name, e in evals.items():
        H.emit('coco_eval', lib=name, s=round(med[name], 3),
               runs_s=[round(t, 3) for t in times[name]], images=args.images,
               gt=len(gt['annotations']), dets=len(dets),
               stats=[float(s) for s in e.stats],
               version=fce_version if name != 'pycocotools' else None)
    if 'faster_coco_eval' in evals:
        a, b = evals['pycocotools'], evals['faster_coco_eval']
        diff = np.abs(a.stats - b.stats)
        pa, pb = a.precision, b.precision
        H.emit_ratio(
            'coco_eval',
            pycocotools_over_faster=round(
                med['pycocotools'] / med['faster_coco_eval'], 2),
            stats_identical=bool(np.array_equal(a.stats, b.stats)),
            stats_max_abs_diff=float(diff.max()),
            stats_differing=[int(i) for i in np.nonzero(diff)[0]],
            precision_identical=bool(pa.shape == pb.shape
                                     and np.array_equal(pa, pb)),
            precision_max_abs_diff=float(np.abs(pa - pb).max())
            if pa.shape == pb.shape else None)
    else:
        H.emit_ratio('coco_eval', pycocotools_over_faster=None)


if __name__ == '__main__':
    main()
