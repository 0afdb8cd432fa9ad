"""COCO bbox evaluation with all 12 COCOeval numbers and per-class AP.

mmdet's ``CocoMetric`` returns 6 AP numbers and, by default, evaluates with
``maxDets=(100, 300, 1000)``. The competition ran plain pycocotools
``COCOeval`` (``maxDets=(1, 10, 100)``), so :class:`CompetitionCocoMetric`
keeps mmdet's result conversion (``results2json``/``gt_to_coco_json``) and
replaces only the evaluation: pycocotools defaults, all 12 stats, per-class
AP (IoU .50:.95, all areas, 100 dets) under ``bbox_AP/<class>``.

:func:`write_results` turns the returned metrics into the files
``tools/test.py`` leaves in the work dir.
"""
import contextlib
import csv
import io
import json
import math
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import MMLogger

DEFAULT_MAX_DETS = (1, 10, 100)  # pycocotools' COCOeval


def stat_names(max_dets: Sequence[int] = DEFAULT_MAX_DETS) -> tuple:
    """Index in ``COCOeval.stats`` -> metric name; the AR names carry the
    ``maxDets`` they were computed with (``proposal_nums``)."""
    small, mid, large = max_dets
    return ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s',
            'bbox_mAP_m', 'bbox_mAP_l', f'bbox_AR@{small}', f'bbox_AR@{mid}',
            f'bbox_AR@{large}', f'bbox_AR_s@{large}', f'bbox_AR_m@{large}',
            f'bbox_AR_l@{large}')


STAT_NAMES = stat_names()


def _stat_layout(max_dets: Sequence[int]) -> tuple:
    """(ap, iou, area, maxDets) of each stat, as ``summarize()`` computes
    them: its first AP always uses maxDets=100, the others the third."""
    small, mid, large = max_dets
    return ((1, None, 'all', 100), (1, .5, 'all', large),
            (1, .75, 'all', large), (1, None, 'small', large),
            (1, None, 'medium', large), (1, None, 'large', large),
            (0, None, 'all', small), (0, None, 'all', mid),
            (0, None, 'all', large), (0, None, 'small', large),
            (0, None, 'medium', large), (0, None, 'large', large))


PER_CLASS_PREFIX = 'bbox_AP/'


def format_summary(stats: Sequence[float],
                   max_dets: Sequence[int] = DEFAULT_MAX_DETS) -> str:
    """The 12 stats in the layout of pycocotools ``COCOeval.summarize()``,
    one line each, ending with a newline."""
    assert len(stats) == 12, len(stats)
    lines = []
    for value, (ap, iou, area, dets) in zip(stats, _stat_layout(max_dets)):
        title = 'Average Precision' if ap == 1 else 'Average Recall'
        kind = '(AP)' if ap == 1 else '(AR)'
        iou_str = '0.50:0.95' if iou is None else f'{iou:0.2f}'
        lines.append(f' {title:<18} {kind} @[ IoU={iou_str:<9} | '
                     f'area={area:>6s} | maxDets={dets:>3d} ] = '
                     f'{value:0.3f}')
    return '\n'.join(lines) + '\n'


@METRICS.register_module()
class CompetitionCocoMetric(CocoMetric):
    """``CocoMetric`` (bbox only) evaluated exactly as pycocotools' defaults.

    Returns ``bbox_mAP``, ``bbox_mAP_50``, ``bbox_mAP_75``, ``bbox_mAP_s/m/l``
    (mmdet's names), ``bbox_AR@1/10/100``, ``bbox_AR_s/m/l@100``, unrounded,
    and with ``classwise=True`` ``bbox_AP/<class name>`` (NaN for a class
    without ground truth). Other ``proposal_nums`` (COCOeval's maxDets)
    rename the AR keys after them, as mmdet's ``CocoMetric`` names its
    proposal recalls.
    """

    def __init__(self, metric='bbox', proposal_nums=DEFAULT_MAX_DETS,
                 **kwargs) -> None:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if metrics != ['bbox']:
            raise ValueError('CompetitionCocoMetric evaluates bbox only')
        if len(proposal_nums) != 3:  # COCOeval.summarize reads three
            raise ValueError(f'proposal_nums needs 3 maxDets values, got '
                             f'{proposal_nums!r}')
        super().__init__(metric='bbox', proposal_nums=proposal_nums, **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        with contextlib.ExitStack() as stack:
            if self.outfile_prefix is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                outfile_prefix = osp.join(tmp, 'results')
            else:
                outfile_prefix = self.outfile_prefix
            if self._coco_api is None:
                self._coco_api = COCO(
                    self.gt_to_coco_json(gts, outfile_prefix))
            if self.cat_ids is None:
                self.cat_ids = self._coco_api.get_cat_ids(
                    cat_names=self.dataset_meta['classes'])
            if self.img_ids is None:
                self.img_ids = self._coco_api.get_img_ids()
            result_files = self.results2json(preds, outfile_prefix)
            if self.format_only:
                logger.info(f'results are saved in {outfile_prefix}.*')
                return OrderedDict()
            dets = load(result_files['bbox'])
        coco_eval = self.evaluate_dets(dets)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval.summarize()
        logger.info('\n' + format_summary(coco_eval.stats,
                                          self.proposal_nums))
        metrics = OrderedDict(
            (name, float(v))
            for name, v in zip(stat_names(self.proposal_nums),
                               coco_eval.stats))
        if self.classwise:
            for name, ap in self.per_class_ap(coco_eval).items():
                metrics[PER_CLASS_PREFIX + name] = ap
        return metrics

    def evaluate_dets(self, dets: List[dict]) -> COCOeval:
        """COCOeval (evaluate + accumulate) of COCO-format detections."""
        if dets:
            coco_dt = self._coco_api.loadRes(dets)
        else:  # pycocotools' loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = dict(
                images=self._coco_api.dataset['images'],
                categories=self._coco_api.dataset['categories'],
                annotations=[])
            coco_dt.createIndex()
        coco_eval = COCOeval(self._coco_api, coco_dt, 'bbox')
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.params.maxDets = list(self.proposal_nums)
        coco_eval.params.iouThrs = self.iou_thrs
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval.evaluate()
            coco_eval.accumulate()
        return coco_eval

    def per_class_ap(self, coco_eval: COCOeval) -> Dict[str, float]:
        """AP@[.50:.95] per class (all areas, last maxDets), class order."""
        precision = coco_eval.eval['precision']  # T x R x K x A x M
        cat_index = {c: k for k, c in enumerate(coco_eval.params.catIds)}
        out = OrderedDict()
        for cat_id in self.cat_ids:
            name = self._coco_api.loadCats(cat_id)[0]['name']
            p = precision[:, :, cat_index[cat_id], 0, -1]
            p = p[p > -1]
            out[name] = float(np.mean(p)) if p.size else float('nan')
        return out


SUMMARY_HEADER = 'IoU metric: bbox\n'  # first line of the original's file


def write_results(metrics: Dict[str, float], out_dir: str,
                  summary_file: str = 'validation_results.txt') -> List[str]:
    """Write the COCO summary (the original's ``validation_results.txt``:
    :data:`SUMMARY_HEADER`, as torchvision's reference ``CocoEvaluator``
    prints it, then pycocotools' layout), the per-class AP table
    (``per_class_ap.md`` and ``.csv``) and all metrics (``metrics.json``,
    NaN -> null) under ``out_dir``. Returns the paths; writes nothing when
    ``metrics`` lacks the 12 stats of :class:`CompetitionCocoMetric`."""
    max_dets, prefix = _find_max_dets(metrics)
    if max_dets is None:
        return []
    keys = [prefix + n for n in stat_names(max_dets)]
    if not all(k in metrics for k in keys):
        return []
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, summary_file)]
    with open(paths[-1], 'w') as f:
        f.write(SUMMARY_HEADER +
                format_summary([metrics[k] for k in keys], max_dets))
    per_class = [(k[len(prefix + PER_CLASS_PREFIX):], v)
                 for k, v in metrics.items()
                 if k.startswith(prefix + PER_CLASS_PREFIX)]
    if per_class:
        paths.append(osp.join(out_dir, 'per_class_ap.csv'))
        with open(paths[-1], 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['label', 'class', 'AP'])
            for i, (name, ap) in enumerate(per_class):
                writer.writerow([i, name, '' if math.isnan(ap) else
                                 f'{ap:.4f}'])
        paths.append(osp.join(out_dir, 'per_class_ap.md'))
        with open(paths[-1], 'w') as f:
            f.write('| label | class | AP@[.50:.95] |\n|---:|:---|---:|\n')
            for i, (name, ap) in enumerate(per_class):
                f.write(f'| {i} | {name} | '
                        f'{"n/a" if math.isnan(ap) else f"{ap:.3f}"} |\n')
    paths.append(osp.join(out_dir, 'metrics.json'))
    with open(paths[-1], 'w') as f:
        json.dump({k: _json_number(v) for k, v in metrics.items()}, f,
                  indent=2)
    return paths


def _find_max_dets(metrics: Dict[str, float]) -> tuple:
    """(maxDets, key prefix) read back from the AR names (``coco/bbox_AR@1``,
    ``@10``, ``@100``, ...); (None, None) if there are not three."""
    found = [re.fullmatch(r'(.*)bbox_AR@(\d+)', k) for k in metrics]
    found = [m for m in found if m]
    if len(found) != 3 or len({m.group(1) for m in found}) != 1:
        return None, None
    return tuple(int(m.group(2)) for m in found), found[0].group(1)


def _json_number(v):
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
