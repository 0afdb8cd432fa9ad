# The demo's pretraining (tools/run_demo.py): VICReg, ResNet-18, on the
# generator's object-centric unlabeled images (one object each, 40 px; see
# tools/generate_demo_data.py --object-centric), 32 px views made batched by
# VICRegGPUViewsPreprocessor (on the CPU here: the loader only decodes), with
# the object-crop kNN probe at the start and every 2 epochs. The model, loss,
# optimizer and schedule are the real recipe's; only values differ. How
# these values were found: docs/demo.md ("Feasibility study").
_base_ = ['./vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py']

view_size = 32
# The demo's objects get random colours: colour is a nuisance there, so the
# views jitter hue over the whole circle and drop colour more often than the
# ImageNet recipe (0.1 hue, 0.2 saturation, 20% grayscale); a backbone must
# then tell objects apart by shape and texture, the classes' only signal.
view = dict(scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.8, 0.5), gray_prob=0.5)
views = [
    dict(view, blur_prob=1.0, solarize_prob=0.0),
    dict(view, blur_prob=0.1, solarize_prob=0.2),
]
data_preprocessor = dict(
    _delete_=True,
    type='VICRegGPUViewsPreprocessor',
    size=view_size,
    sigma=(0.1 * view_size / 224, 2.0 * view_size / 224),
    views=views)
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(pipeline=train_pipeline))

# solo-learn's CIFAR VICReg optimizer: LARS, trust coefficient 0.02,
# weight decay 1e-4, lr 0.3 per 256 images (here 0.6 x 128 / 256).
optim_wrapper = dict(optimizer=dict(lr=0.6, eta=0.02, weight_decay=1e-4))
train_cfg = dict(max_epochs=6)  # 372 iterations of 128 on 8,000 images

default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=6, max_keep_ckpts=1))
custom_hooks = [
    dict(type='CollapseMonitorHook', interval=25),
    dict(type='NonFiniteLossHook'),
    dict(type='PreemptionHook'),
    dict(
        type='ObjectCropKNNHook',
        interval=2,
        eval_at_start=True,
        data_root='data/demo/labeled/',
        crop_size=view_size,
        max_train_per_class=None,
        max_val_per_class=None,
        batch_size=256),
]
