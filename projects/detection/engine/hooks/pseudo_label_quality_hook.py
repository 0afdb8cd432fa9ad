"""Precision and recall of Soft Teacher's pseudo boxes against held-out
boxes of the unlabeled images.

A semi-supervised run helps only once the teacher's pseudo boxes are right
often enough; this hook says when that happens. For data whose "unlabeled"
images do have boxes kept aside (the demo's generator writes them,
``tools/generate_demo_data.py``; on real data: a labeled subset used as
unlabeled), it matches the pseudo boxes of each training batch (kept by
:class:`~projects.detection.models.RecordingSoftTeacher`) to those boxes,
as COCO does at one IoU: by score, each held-out box at most once, same
class, IoU >= ``iou_thr``. Every ``interval`` iterations it logs, per
score threshold ``t`` (default: the model's ``rpn_pseudo_thr`` /
``cls_pseudo_thr`` and ``pseudo_label_initial_score_thr``)::

    pseudo_precision@t = matched pseudo boxes / pseudo boxes scoring >= t
    pseudo_recall@t    = matched held-out boxes / held-out boxes
    pseudo_boxes@t     = pseudo boxes scoring >= t, per image (0: the
                         teacher never reaches t)

Precision is ``nan`` while no box passes ``t``. Each logged value covers
the ``interval`` iterations before it (mmengine's LogProcessor shows the
latest value of such scalars). The held-out boxes never reach the training
data: the hook reads them itself, from a COCO file matched by image file
name.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torchvision.ops import box_iou


def match_counts(bboxes: torch.Tensor, scores: torch.Tensor,
                 labels: torch.Tensor, gt_bboxes: torch.Tensor,
                 gt_labels: torch.Tensor, score_thr: float,
                 iou_thr: float = 0.5) -> Dict[str, int]:
    """Greedy COCO-style matching of the boxes scoring >= ``score_thr`` to
    the ground truth: ``{'pseudo': n, 'matched': k, 'gt': m}``."""
    keep = scores >= score_thr
    bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
    matched = 0
    if len(bboxes) and len(gt_bboxes):
        iou = box_iou(bboxes.float(), gt_bboxes.float())
        iou[labels[:, None] != gt_labels[None, :]] = -1
        taken = torch.zeros(len(gt_bboxes), dtype=torch.bool)
        for i in scores.argsort(descending=True, stable=True).tolist():
            row = iou[i].masked_fill(taken, -1)
            best = int(row.argmax())
            if row[best] >= iou_thr:
                taken[best] = True
                matched += 1
    return dict(pseudo=len(bboxes), matched=matched, gt=len(gt_bboxes))


def load_held_out_boxes(ann_file: str, classes: Sequence[str]) -> Dict:
    """``{file name: (boxes xyxy, labels as indices into classes)}`` from a
    COCO file; categories are matched to ``classes`` by name."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'PseudoLabelQualityHook: ann_file {ann_file!r} does not exist; '
            f'give the COCO file of the unlabeled images\' held-out boxes '
            f'(tools/generate_demo_data.py writes unlabeled_boxes.json) or '
            f'remove the hook from custom_hooks')
    with open(ann_file) as f:
        coco = json.load(f)
    index = {name: i for i, name in enumerate(classes)}
    names = {c['id']: c['name'] for c in coco['categories']}
    unknown = sorted(set(names.values()) - set(index))
    if unknown:
        raise ValueError(
            f'PseudoLabelQualityHook: {ann_file} has categories the '
            f'detector does not know: {unknown}; its classes are '
            f'{list(classes)}')
    boxes = {im['id']: ([], []) for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        boxes[a['image_id']][0].append([x, y, x + w, y + h])
        boxes[a['image_id']][1].append(index[names[a['category_id']]])
    return {
        osp.basename(im['file_name']):
        (torch.tensor(boxes[im['id']][0],
                      dtype=torch.float32).reshape(-1, 4),
         torch.tensor(boxes[im['id']][1], dtype=torch.long))
        for im in coco['images']
    }


@HOOKS.register_module()
class PseudoLabelQualityHook(Hook):
    """Logs the pseudo boxes' precision and recall (see module docstring).

    Args:
        ann_file: COCO file with the held-out boxes of the unlabeled
            images; its ``file_name`` entries are matched to the images'
            file names (basename).
        score_thrs: thresholds to report; default the model's
            ``semi_train_cfg`` thresholds.
        iou_thr: IoU for a match (0.5, as AP50).
        interval: iterations accumulated per logged value.
    """
    priority = 'NORMAL'

    def __init__(self, ann_file: str,
                 score_thrs: Optional[Sequence[float]] = None,
                 iou_thr: float = 0.5, interval: int = 10):
        self.ann_file = ann_file
        self.score_thrs = score_thrs
        self.iou_thr = iou_thr
        self.interval = interval
        self._reset()

    def _reset(self):
        self.counts: Dict[float, Dict[str, int]] = {}
        self.images = 0

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if not hasattr(model, 'last_pseudo_instances'):
            raise TypeError(
                f'PseudoLabelQualityHook needs a model that keeps its pseudo '
                f'boxes (type=\'RecordingSoftTeacher\'); this one is '
                f'{type(model).__name__}')
        if self.score_thrs is None:
            cfg = model.semi_train_cfg
            self.score_thrs = sorted({
                cfg.get('pseudo_label_initial_score_thr', 0.5),
                cfg.get('rpn_pseudo_thr', 0.9),
                cfg.get('cls_pseudo_thr', 0.9)
            })
        classes = runner.train_dataloader.dataset.metainfo['classes']
        self.held_out = load_held_out_boxes(self.ann_file, classes)
        self.model = model

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        for path, bboxes, scores, labels in \
                self.model.last_pseudo_instances or ():
            name = osp.basename(path)
            if name not in self.held_out:
                raise KeyError(
                    f'PseudoLabelQualityHook: {name} ({path}) has no entry '
                    f'in {self.ann_file}: is it the file of these '
                    f'unlabeled images?')
            gt_bboxes, gt_labels = self.held_out[name]
            # a diagnostic: one host copy per step, only where it is on
            bboxes, scores, labels = bboxes.cpu(), scores.cpu(), labels.cpu()
            self.images += 1
            for t in self.score_thrs:
                c = match_counts(bboxes, scores, labels, gt_bboxes,
                                 gt_labels, t, self.iou_thr)
                total = self.counts.setdefault(t, dict.fromkeys(c, 0))
                for k, v in c.items():
                    total[k] += v
        if self.every_n_train_iters(runner, self.interval) and self.images:
            hub = runner.message_hub
            for t, c in self.counts.items():
                hub.update_scalar(
                    f'train/pseudo_precision@{t:g}',
                    c['matched'] / c['pseudo'] if c['pseudo'] else
                    float('nan'))
                hub.update_scalar(f'train/pseudo_recall@{t:g}',
                                  c['matched'] / max(c['gt'], 1))
                hub.update_scalar(f'train/pseudo_boxes@{t:g}',
                                  c['pseudo'] / self.images)
            self._reset()
