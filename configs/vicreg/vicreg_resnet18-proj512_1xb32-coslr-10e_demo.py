# VICReg on CPU in minutes: ResNet-18, 64px crops, 512-512-512 expander,
# plain BN (SyncBN cannot run on CPU processes), fp32. Used by the tests and
# the demo (~1 min per epoch on 2000 images on 2 CPU cores). Data:
#   python tools/generate_demo_data.py --out data/demo   (full demo), or
#   python -m projects.vicreg.demo_data data/demo/unlabeled --num 512
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

crop = 64
# Blur sigma in pixels scales with the crop (official: 0.1-2.0 at 224px).
train_pipeline = _base_.train_pipeline
for _view in train_pipeline[1].transforms:  # MultiView's two view pipelines
    _view[0].scale = crop  # RandomResizedCrop
    _view[4].sigma = (0.1 * crop / 224, 2.0 * crop / 224)  # FastGaussianBlur
del _view
view_pipeline1, view_pipeline2 = train_pipeline[1].transforms  # as used
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(data_root='data/demo/unlabeled', pipeline=train_pipeline))

model = dict(
    backbone=dict(depth=18, norm_cfg=dict(type='BN')),
    neck=dict(
        in_channels=512,
        hid_channels=512,
        out_channels=512,
        norm_cfg=dict(type='BN1d')))

# A higher base lr than the paper's 0.2: with LARS (eta 1e-3) each step moves
# a weight by about lr * 1e-3 of its norm, so at lr 0.2 * 32/256 the 620 steps
# of this demo barely leave the initialisation (measured here: loss 21.5 ->
# 21.4 over 10 epochs); base 8.0 (lr 1.0 at batch 32) brought the invariance
# term from 4.3 to 1.8 within 3 epochs.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=8.0))

param_scheduler = _base_.param_scheduler
param_scheduler[0].end = param_scheduler[1].begin = 1  # warmup epochs
train_cfg = dict(max_epochs=10)

default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=5))
custom_hooks = [
    dict(type='CollapseMonitorHook', interval=5),
    dict(type='NonFiniteLossHook'),
    dict(type='PreemptionHook')
]
env_cfg = dict(cudnn_benchmark=False)
