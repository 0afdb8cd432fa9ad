# Ablation (normalisation only): the recommended recipe with the original
# team's frozen BN (torchvision <= 0.12 built this backbone with
# FrozenBatchNorm2d even from scratch): BN affine parameters without
# gradient (so no weight decay either) and BN layers kept in eval mode, i.e.
# the checkpoint's statistics; every conv stage, the stem included, trains.
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

model = dict(
    backbone=dict(
        norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True))
