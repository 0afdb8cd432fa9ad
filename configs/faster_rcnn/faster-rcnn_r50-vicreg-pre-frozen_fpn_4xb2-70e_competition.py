# Ablation (the seed's --freeze): VICReg backbone frozen (stem + 4 stages,
# BN statistics included); only FPN and heads train.
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

model = dict(backbone=dict(frozen_stages=4))
