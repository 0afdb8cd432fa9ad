# Ablation (the seed's schedule variant): StepLR(10, 0.2) up to epoch 40,
# then the lr stays constant (0.005 * 0.2^4) for epochs 40-70.
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR', milestones=[10, 20, 30, 40], gamma=0.2,
        by_epoch=True, begin=0, end=70)
]
