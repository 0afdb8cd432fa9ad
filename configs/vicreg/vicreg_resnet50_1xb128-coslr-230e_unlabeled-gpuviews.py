# The seed recipe with the two views computed on the GPU
# (projects/vicreg/gpu_views.py): the loader workers only decode the PNG and
# pack uint8 (the competition images are all 224x224, so they batch as is);
# VICRegGPUViewsPreprocessor then draws per-sample parameters from the
# official distributions (RandomResizedCrop 224 with PIL's bicubic kernel,
# flip, ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8 in random order, grayscale
# 0.2, PIL GaussianBlur sigma U[0.1, 2] p 1.0 / 0.1, solarize p 0 / 0.2,
# ImageNet mean/std) and builds both views for the whole batch on device.
# CPU cost per pair drops from ~12 ms (PIL views) to the decode alone; see
# docs/performance.md.
#
# Performance switches: data_preprocessor.channels_last=True (NHWC views;
# the -nhwc-bf16 child also converts the model) and bf16 autocast via
# optim_wrapper.dtype='bfloat16' (see that child).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    dataset=dict(pipeline=train_pipeline))

# Top level, as the base's SelfSupDataPreprocessor (the Runner passes it to
# the model: model.setdefault('data_preprocessor', data_preprocessor)).
data_preprocessor = dict(
    _delete_=True,
    type='VICRegGPUViewsPreprocessor',
    size=224,
    to_rgb=True,  # mmcv decodes BGR
    blur='pil',  # the official PIL GaussianBlur filter
    sigma=(0.1, 2.0),
    views=[
        dict(blur_prob=1.0, solarize_prob=0.0),
        dict(blur_prob=0.1, solarize_prob=0.2),
    ],
    channels_last=False)

env_cfg = dict(cudnn_benchmark=True)
