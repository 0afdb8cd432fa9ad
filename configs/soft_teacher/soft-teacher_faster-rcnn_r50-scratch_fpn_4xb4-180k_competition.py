# Ablation: Soft Teacher from a random-init backbone (mmdet's Kaiming init);
# the supervised counterpart is
# configs/faster_rcnn/faster-rcnn_r50-scratch_fpn_4xb2-70e_competition.py.
_base_ = './soft-teacher_faster-rcnn_r50-vicreg-pre_fpn_4xb4-180k_competition.py'

model = dict(detector=dict(backbone=dict(init_cfg=None)))
