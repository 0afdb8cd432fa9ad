"""MaxIoUAssigner without host synchronisation.

mmdet 3.3's ``MaxIoUAssigner.assign_wrt_overlaps`` matches low-quality
anchors in a Python loop over the ground-truth boxes, and each iteration
evaluates ``if gt_max_overlaps[i] >= min_pos_iou`` on the host: one GPU->CPU
synchronisation per ground-truth box per image in every RPN step (48 per
step for 8 images with 6 boxes), each one stalling the launch queue. It then
calls ``torch.nonzero`` (another synchronisation) to fill the labels.

``SyncFreeMaxIoUAssigner`` computes the same result with tensor ops only:
the loop writes ``i + 1`` for every anchor whose IoU with gt ``i`` equals
gt ``i``'s best IoU, later gts overwriting earlier ones, i.e. each such
anchor ends up with the *largest* qualifying ``i``: a masked max over the gt
axis. The result is identical to mmdet's (tests/projects/detection/test_det_assigner.py,
including ties and the ``gt_max_assign_all=False`` variant).
"""
import torch
from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class SyncFreeMaxIoUAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` (same arguments, same result) with the
    low-quality matching and label lookup vectorised."""

    def assign_wrt_overlaps(self, overlaps: Tensor,
                            gt_labels: Tensor) -> AssignResult:
        num_gts, num_bboxes = overlaps.shape
        if num_gts == 0 or num_bboxes == 0:
            return super().assign_wrt_overlaps(overlaps, gt_labels)

        assigned_gt_inds = overlaps.new_full((num_bboxes, ), -1,
                                             dtype=torch.long)
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)

        # negatives, then positives: as mmdet
        if isinstance(self.neg_iou_thr, float):
            neg = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        else:
            lo, hi = self.neg_iou_thr
            neg = (max_overlaps >= lo) & (max_overlaps < hi)
        assigned_gt_inds.masked_fill_(neg, 0)  # x[mask] = 0 may nonzero()
        pos = max_overlaps >= self.pos_iou_thr
        assigned_gt_inds = torch.where(pos, argmax_overlaps + 1,
                                       assigned_gt_inds)

        if self.match_low_quality:
            gt_ids = torch.arange(
                1, num_gts + 1, device=overlaps.device)  # i + 1
            qualifies = gt_max_overlaps >= self.min_pos_iou
            if self.gt_max_assign_all:
                hits = (overlaps == gt_max_overlaps[:, None]) & qualifies[:,
                                                                          None]
                best = torch.where(hits, gt_ids[:, None],
                                   0).amax(dim=0)  # largest i wins
            else:
                best = torch.zeros_like(assigned_gt_inds).scatter_reduce(
                    0, gt_argmax_overlaps, torch.where(qualifies, gt_ids, 0),
                    reduce='amax')
            assigned_gt_inds = torch.where(best > 0, best, assigned_gt_inds)

        assigned_labels = torch.where(
            assigned_gt_inds > 0,
            gt_labels[(assigned_gt_inds - 1).clamp(min=0)].long(),
            assigned_gt_inds.new_full((), -1))
        return AssignResult(
            num_gts=num_gts,
            gt_inds=assigned_gt_inds,
            max_overlaps=max_overlaps,
            labels=assigned_labels)
