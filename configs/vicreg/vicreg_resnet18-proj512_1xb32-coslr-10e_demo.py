# VICReg on CPU in minutes: ResNet-18, 64px crops, 512-512-512 expander,
# plain BN (SyncBN cannot run on CPU processes), fp32. Used by the tests and
# the demo (timings: docs/performance.md). Data:
#   python tools/generate_demo_data.py --out data/demo   (full demo), or
#   python -m projects.vicreg.demo_data data/demo/unlabeled --num 512
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

# 64px crops; the blur sigma in pixels scales with the crop (official: 0.1-2.0
# at 224px). Both views' ops of these types take these values.
crop = 64
demo_view_ops = dict(
    RandomResizedCrop=dict(scale=crop),
    FastGaussianBlur=dict(sigma=(0.1 * crop / 224, 2.0 * crop / 224)))
train_pipeline = [
    dict(t, transforms=[[dict(op, **demo_view_ops.get(op.type, {}))
                         for op in view] for view in t.transforms])
    if t.type == 'MultiView' else t for t in _base_.train_pipeline
]
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
# a weight by about lr * 1e-3 of its norm, so at lr 0.2 * 32/256 the few
# hundred steps of this demo barely leave the initialisation (the runs that
# chose 8.0: docs/performance.md).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=8.0))

warmup_epochs = 1
param_scheduler = [
    dict(_base_.warmup_lr, end=warmup_epochs),
    dict(_base_.cosine_lr, begin=warmup_epochs)
]
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
