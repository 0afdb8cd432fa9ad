"""COCO AP / AR100 of a detector on any multiset of validation images, for
a paired bootstrap of two detectors evaluated on the same images.

pycocotools' ``COCOeval.evaluate`` matches detections to ground truth per
image and category; ``accumulate`` then pools the images. Pooling a
bootstrap resample (images drawn with replacement) only re-weights each
image's matches, so the matching is done once and every resample is a
weighted pass over detections pre-sorted by score: the same
precision/recall, monotone envelope and 101-point interpolation as
``COCOeval.accumulate``, with image weights (Efron & Tibshirani's paired
bootstrap: both detectors see the same resample of images).
"""
import contextlib
import io
from typing import Dict, List, Sequence

import numpy as np

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


class ImageWeightedCOCO:
    """Per-image COCO matches of one detector (area 'all', 100 detections).

    Args:
        gt_json: COCO ground-truth annotation file.
        dt_json: COCO-format detection results (``*.bbox.json``) on it.
    """

    def __init__(self, gt_json: str, dt_json: str) -> None:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' chatter
            gt = COCO(gt_json)
            dt = gt.loadRes(dt_json)
            ev = COCOeval(gt, dt, 'bbox')
            ev.evaluate()
        p = ev.params
        self.img_ids: List[int] = list(p.imgIds)
        n_img, n_area = len(p.imgIds), len(p.areaRng)
        self.num_iou = len(p.iouThrs)
        # per category: detections sorted by score with their image index,
        # (T, D) true/false positive flags, and not-ignored GT per image
        self.categories = []
        for k in range(len(p.catIds)):
            per_img = [ev.evalImgs[k * n_area * n_img + i]  # area 'all'
                       for i in range(n_img)]
            scores, img_of, tps, fps = [], [], [], []
            gt_count = np.zeros(n_img)
            for i, e in enumerate(per_img):
                if e is None:
                    continue
                keep = slice(0, p.maxDets[-1])
                s = np.asarray(e['dtScores'])[keep]
                m = np.asarray(e['dtMatches'])[:, keep]
                ig = np.asarray(e['dtIgnore'])[:, keep].astype(bool)
                scores.append(s)
                img_of.append(np.full(len(s), i))
                tps.append((m != 0) & ~ig)
                fps.append((m == 0) & ~ig)
                gt_count[i] = np.count_nonzero(
                    np.asarray(e['gtIgnore']) == 0)
            if scores:
                scores = np.concatenate(scores)
                order = np.argsort(-scores, kind='mergesort')
                img_of = np.concatenate(img_of)[order]
                tps = np.concatenate(tps, axis=1)[:, order]
                fps = np.concatenate(fps, axis=1)[:, order]
            else:
                img_of = np.zeros(0, int)
                tps = fps = np.zeros((self.num_iou, 0), bool)
            self.categories.append((img_of, tps, fps, gt_count))

    def metrics(self, weights: np.ndarray) -> Dict[str, float]:
        """``bbox_mAP`` and ``bbox_AR@100`` with image ``i`` counted
        ``weights[i]`` times (all ones: pycocotools' own figures)."""
        aps, ars = [], []
        for img_of, tps, fps, gt_count in self.categories:
            n_gt = float(gt_count @ weights)
            if n_gt == 0:
                continue  # as pycocotools: category without GT left out
            w = weights[img_of]
            tp = np.cumsum(tps * w, axis=1)
            fp = np.cumsum(fps * w, axis=1)
            for t in range(self.num_iou):
                rc = tp[t] / n_gt
                pr = tp[t] / np.maximum(tp[t] + fp[t], np.spacing(1))
                ars.append(rc[-1] if len(rc) else 0.0)
                # monotone envelope, then precision at each recall step
                pr = np.maximum.accumulate(pr[::-1])[::-1]
                idx = np.searchsorted(rc, RECALL_THRESHOLDS, side='left')
                q = np.zeros(len(RECALL_THRESHOLDS))
                valid = idx < len(pr)
                q[valid] = pr[idx[valid]]
                aps.append(q.mean())
        nan = float('nan')
        return {'bbox_mAP': float(np.mean(aps)) if aps else nan,
                'bbox_AR@100': float(np.mean(ars)) if ars else nan}


def paired_bootstrap(a: ImageWeightedCOCO, b: ImageWeightedCOCO,
                     num_resamples: int = 1000,
                     seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Paired bootstrap over validation images of ``a - b``.

    Returns, per metric: the observed difference, its bootstrap standard
    error and 95% percentile interval, and the two-sided p-value of "no
    difference" (twice the smaller tail of the resampled differences
    around 0; 0 means below ``1 / num_resamples``).
    """
    if a.img_ids != b.img_ids:
        raise ValueError('paired bootstrap: the two detectors were '
                         'evaluated on different validation images')
    rng = np.random.default_rng(seed)
    n = len(a.img_ids)
    ones = np.ones(n)
    observed = {key: a.metrics(ones)[key] - b.metrics(ones)[key]
                for key in ('bbox_mAP', 'bbox_AR@100')}
    diffs: Dict[str, list] = {key: [] for key in observed}
    for _ in range(num_resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n)
        ma, mb = a.metrics(weights), b.metrics(weights)
        for key in diffs:
            diffs[key].append(ma[key] - mb[key])
    out = {}
    for key, values in diffs.items():
        d = np.asarray(values)
        tail = min(np.mean(d <= 0), np.mean(d >= 0))
        out[key] = dict(diff=observed[key], resamples=num_resamples,
                        se=float(d.std(ddof=1)),
                        ci95=(float(np.percentile(d, 2.5)),
                              float(np.percentile(d, 97.5))),
                        p=float(min(1.0, 2 * tail)))
    return out


def coco_metrics(gt_json: str, dt_json: str) -> Dict[str, float]:
    """AP and AR100 of one detector on every image once."""
    ev = ImageWeightedCOCO(gt_json, dt_json)
    return ev.metrics(np.ones(len(ev.img_ids)))


__all__: Sequence[str] = ('ImageWeightedCOCO', 'paired_bootstrap',
                          'coco_metrics')
