# VICReg baseline recipe for the competition's 512,000 unlabeled 224x224 PNGs:
# global batch 128, base lr 0.15 (-> lr 0.075 after auto_scale_lr), 230
# epochs (4000 iterations per epoch, no ragged batch).
#
# 1xb128: the whole batch on one GPU (ResNet-50 at 224px with AMP fits
# easily on one 80 GB card). The maths does not depend on the split: SyncBN
# and the all-gathered variance/covariance see the global batch, and DDP's
# gradient average makes the per-rank invariance term the global one. On 4
# GPUs run `tools/dist_train.sh CONFIG 4 --cfg-options
# train_dataloader.batch_size=32` for the identical recipe (auto_scale_lr
# recomputes the lr from the real global batch either way).
_base_ = ['./vicreg_resnet50_32xb64-coslr-1000e_in1k.py']

train_dataloader = dict(
    batch_size=128,
    dataset=dict(
        _delete_=True,
        type='UnlabeledImageFolder',
        data_root='data/unlabeled/',
        pipeline=_base_.train_pipeline))

optim_wrapper = dict(optimizer=dict(lr=0.15))

train_cfg = dict(max_epochs=230)

# An epoch is minutes on one GPU: checkpoint every epoch (keep 3).
default_hooks = dict(checkpoint=dict(interval=1))

# Object-crop kNN probe (k=20, T=0.07) on the labeled competition splits
# (COCO json from yaml_to_coco.py), every 5 epochs and after the last: at
# most 50 objects per class from each split, 10,000 224px crops, i.e. about
# 10,000 forward passes against an epoch's 1,024,000 (two views x 512,000)
# forward+backward passes: ~0.3% of an epoch's compute per evaluation,
# ~0.07% per epoch at interval 5 (decoded crops are cached after the first).
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='ObjectCropKNNHook',
        interval=5,
        data_root='data/labeled/',
        crop_size=224,
        max_train_per_class=50,
        max_val_per_class=50),
]
