# VICReg pretraining data: ImageNet train and the two views of the official
# augmentations.py, op for op. Jitter, grayscale and blur are the uint8 cv2
# ops of projects/vicreg/datasets/transforms/fast_views.py (PIL's arithmetic, less CPU;
# docs/performance.md). Children change ops by type, e.g. the demo's
# `dict(op, **demo_view_ops.get(op.type, {}))` over both views.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# Ops shared by both views.
view_crop = dict(
    type='RandomResizedCrop',
    scale=224,
    interpolation='bicubic',
    backend='pillow')
view_flip = dict(type='RandomFlip', prob=0.5)
view_jitter = dict(
    type='RandomApply',
    transforms=[
        dict(
            type='FastColorJitter',
            brightness=0.4,
            contrast=0.4,
            saturation=0.2,
            hue=0.1)
    ],
    prob=0.8)
view_grayscale = dict(type='FastRandomGrayscale', prob=0.2)
# The asymmetric ops: view 1 always blurred, view 2 sometimes solarized.
view1_blur = dict(type='FastGaussianBlur', sigma=(0.1, 2.0), prob=1.0)
view1_solarize = dict(type='Solarize', thr=128, prob=0.0)
view2_blur = dict(type='FastGaussianBlur', sigma=(0.1, 2.0), prob=0.1)
view2_solarize = dict(type='Solarize', thr=128, prob=0.2)

view_pipeline1 = [
    view_crop, view_flip, view_jitter, view_grayscale, view1_blur,
    view1_solarize
]
view_pipeline2 = [
    view_crop, view_flip, view_jitter, view_grayscale, view2_blur,
    view2_solarize
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiView',
        num_views=[1, 1],
        transforms=[view_pipeline1, view_pipeline2]),
    dict(type='PackInputs')
]

# drop_last: BatchNorm and the variance term need > 1 sample per rank; the
# official loader keeps the ragged last batch but still divides its
# covariance by the configured batch size - 1, so dropping it is faithful.
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
