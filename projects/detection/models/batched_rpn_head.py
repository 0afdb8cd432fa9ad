"""RPNHead whose proposals are pre-selected for the whole batch at once.

mmdet's ``RPNHead`` turns scores into proposals image by image and, inside,
level by level (``_predict_by_feat_single``): permute, sigmoid, sort, top-k
gather, concatenation, box decoding, for each of the 5 FPN levels of each
image: many small ops (kernel launches on a GPU) per image; counts in
docs/performance.md. ``BatchedRPNHead``
does the per-level part once for the whole batch (batched sort along the
anchor axis, one decode of every image's candidates) and keeps mmdet's own
per-image post-processing (size filter, NMS per image and level, top
``max_per_img``). Every candidate box is computed by the same element-wise
operations, so the proposals are mmdet's
(tests/projects/detection/test_det_step_equivalence.py compares whole
training steps bit for bit on CPU; on a GPU, fp16 score ties
may be ordered differently by a batched sort, as in any batched top-k).
"""
import copy
from typing import List, Optional

import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class BatchedRPNHead(RPNHead):
    """``RPNHead`` (same arguments and outputs) with batched proposal
    pre-selection; falls back to mmdet's per-image path where the batched
    one does not apply (softmax scores, score factors, box types)."""

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg=None,
                        rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        if (not self.use_sigmoid_cls or score_factors is not None
                or not with_nms or self.cls_out_channels != 1
                or getattr(self.bbox_coder, 'use_box_type', False)):
            return super().predict_by_feat(cls_scores, bbox_preds,
                                           score_factors, batch_img_metas,
                                           cfg, rescale, with_nms)
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        nms_pre = cfg.get('nms_pre', -1)
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=cls_scores[0].dtype,
            device=cls_scores[0].device)
        num_imgs = cls_scores[0].shape[0]
        reg_dim = self.bbox_coder.encode_size

        scores_l, deltas_l, priors_l, levels_l = [], [], [], []
        for level, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_scores, bbox_preds, mlvl_priors)):
            # as select_single_mlvl(detach=True) + the per-image reshapes
            scores = cls_score.detach().permute(0, 2, 3, 1).reshape(
                num_imgs, -1).sigmoid()
            deltas = bbox_pred.detach().permute(0, 2, 3, 1).reshape(
                num_imgs, -1, reg_dim)
            if 0 < nms_pre < scores.shape[1]:
                scores, order = scores.sort(dim=1, descending=True)
                order, scores = order[:, :nms_pre], scores[:, :nms_pre]
                deltas = deltas.gather(
                    1, order[..., None].expand(-1, -1, reg_dim))
                priors = priors[order]
            else:
                priors = priors.expand(num_imgs, -1, -1)
            scores_l.append(scores)
            deltas_l.append(deltas)
            priors_l.append(priors)
            levels_l.append(
                torch.full_like(scores, level, dtype=torch.long))
        scores = torch.cat(scores_l, dim=1)
        levels = torch.cat(levels_l, dim=1)
        deltas = torch.cat(deltas_l, dim=1)
        priors = torch.cat(priors_l, dim=1)
        # decode all candidates at once, then clip each image to its shape
        # (delta2bbox's clamp_(min=0, max=W / H), per image)
        bboxes = self.bbox_coder.decode(
            priors.reshape(-1, 4), deltas.reshape(-1, reg_dim),
            max_shape=None).reshape(num_imgs, -1, 4)
        if getattr(self.bbox_coder, 'clip_border', True):
            # Python-scalar bounds as delta2bbox: a bounds tensor built from
            # the metas would be a host->device copy (a sync) every step
            shapes = [tuple(meta['img_shape'][:2]) for meta in batch_img_metas]
            groups = [bboxes] if len(set(shapes)) == 1 else list(bboxes)
            for boxes, (h, w) in zip(groups, shapes):
                boxes[..., 0::2].clamp_(min=0, max=w)
                boxes[..., 1::2].clamp_(min=0, max=h)

        result_list = []
        for img_id, img_meta in enumerate(batch_img_metas):
            results = InstanceData()
            results.bboxes = bboxes[img_id]
            results.scores = scores[img_id]
            results.level_ids = levels[img_id]
            result_list.append(
                self._bbox_post_process(
                    results=results,
                    cfg=cfg,
                    rescale=rescale,
                    img_meta=img_meta))
        return result_list
