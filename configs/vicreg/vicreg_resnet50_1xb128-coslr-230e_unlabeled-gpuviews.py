# The baseline recipe with the two views computed on the GPU
# (projects/vicreg/models/utils/gpu_views.py): the loader workers only decode the PNG and
# pack uint8 (the competition images are all 224x224, so they batch as is);
# VICRegGPUViewsPreprocessor then draws per-sample parameters from the
# official distributions (RandomResizedCrop 224 with PIL's bicubic kernel,
# flip, ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8 in random order, grayscale
# 0.2, PIL GaussianBlur sigma U[0.1, 2] p 1.0 / 0.1, solarize p 0 / 0.2,
# ImageNet mean/std) and builds both views for the whole batch on device.
# The CPU work per pair drops to the decode (docs/performance.md).
#
# Performance switches: data_preprocessor.channels_last=True (NHWC views;
# the -nhwc-bf16 child also converts the model) and bf16 autocast via
# optim_wrapper.dtype='bfloat16' (see that child).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(pin_memory=True, dataset=dict(pipeline=train_pipeline))

# Top level, as the base's SelfSupDataPreprocessor (the Runner passes it to
# the model: model.setdefault('data_preprocessor', data_preprocessor)). Its
# defaults are the official views at 224px from BGR uint8 input.
data_preprocessor = dict(_delete_=True, type='VICRegGPUViewsPreprocessor')
