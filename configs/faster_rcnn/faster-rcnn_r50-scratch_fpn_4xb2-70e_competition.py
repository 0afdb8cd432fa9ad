# Ablation: same recipe from a random-init backbone (mmdet's Kaiming init).
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

model = dict(backbone=dict(init_cfg=None))
