"""mmdet's Soft Teacher, keeping the pseudo boxes of the last batch in view.

Soft Teacher (Xu et al., "End-to-End Semi-Supervised Object Detection with
Soft Teacher", ICCV 2021) trains the student on the teacher's detections on
unlabeled images. Whether those pseudo boxes are any good is the first
thing to know when a semi-supervised run does not help, and mmdet logs
nothing about them. :class:`RecordingSoftTeacher` is mmdet's ``SoftTeacher``
unchanged, except that it keeps what its ``get_pseudo_instances`` returned
(boxes in the original image's pixels, scores, labels, image paths) for
:class:`~projects.detection.engine.hooks.PseudoLabelQualityHook`, which
scores them against held-out boxes.
"""
from typing import List, Optional, Tuple

from mmdet.models.detectors import SoftTeacher
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor


@MODELS.register_module()
class RecordingSoftTeacher(SoftTeacher):
    """``SoftTeacher`` that keeps its last pseudo instances.

    ``last_pseudo_instances``: one ``(img_path, bboxes, scores, labels)``
    per unlabeled image of the last training batch, on the model's device
    (no copy to the host in the training step: the hook does that), boxes
    (x1, y1, x2, y2) projected back to the original image as mmdet does
    before it projects them into the student's view. These are all the
    teacher's detections above ``pseudo_label_initial_score_thr``; the
    RPN / classification losses use those above ``rpn_pseudo_thr`` /
    ``cls_pseudo_thr``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_pseudo_instances: Optional[List[Tuple]] = None

    def get_pseudo_instances(self, batch_inputs: Tensor,
                             batch_data_samples: SampleList):
        samples, batch_info = super().get_pseudo_instances(
            batch_inputs, batch_data_samples)
        self.last_pseudo_instances = [
            (s.img_path, s.gt_instances.bboxes.detach(),
             s.gt_instances.scores.detach(), s.gt_instances.labels.detach())
            for s in samples
        ]
        return samples, batch_info
