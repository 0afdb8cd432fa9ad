# Faster R-CNN R50-FPN fine-tuned from a VICReg-pretrained ResNet-50: the
# seed recipe (torchvision fasterrcnn_resnet50_fpn), fixed.
# - 100 classes, "cup or mug" = label 0 is a real class (mmdet's background
#   is label num_classes), unlike the seed's torchvision mapping.
# - Pretrained backbone loading is checked: PretrainedBackboneCheckHook stops
#   the run before the first iteration unless every backbone tensor equals
#   the checkpoint's (the seed's strict=False trained from random init).
# - Short side 800 / long side 1333, flip; all stages trainable, BN in train
#   mode; SyncBN as mmselfsup's detection benchmarks (SyncBNIfCUDA = BN on
#   CPU); SGD lr 0.005 m 0.9 wd 5e-4, batch 8 (4 GPUs x 2); 1000-iter linear
#   warm-up (as torchvision's reference), StepLR(10, 0.2), 70 epochs,
#   validation every 2 epochs.
# The checkpoint is the VICReg (MMPretrain) run's, keys 'backbone.*'; use
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# to point elsewhere (the top-level variable is resolved at load time).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/datasets/competition_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.compat', 'projects.detection', 'projects.engine'],
    allow_failed_imports=False)
default_scope = 'mmdet'

# default: last epoch of configs/vicreg/
# vicreg_resnet50_1xb128-coslr-230e_unlabeled.py
pretrained_ckpt = ('work_dirs/vicreg_resnet50_1xb128-coslr-230e_unlabeled/'
                   'epoch_230.pth')
model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBNIfCUDA', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained_ckpt,
            prefix='backbone.')),
    # Same results, fewer GPU launches / host syncs per step
    # (docs/performance.md): proposals pre-selected for the whole batch at
    # once (projects/detection/rpn_head.py), anchors built once per shape
    # (anchor_generator.py), and mmdet's MaxIoUAssigner without a host sync
    # per ground-truth box (assigner.py)
    rpn_head=dict(
        type='BatchedRPNHead',
        anchor_generator=dict(type='CachedAnchorGenerator')),
    roi_head=dict(bbox_head=dict(num_classes=100)),
    train_cfg=dict(
        rpn=dict(assigner=dict(type='SyncFreeMaxIoUAssigner')),
        rcnn=dict(assigner=dict(type='SyncFreeMaxIoUAssigner'))))

# NonFiniteLossHook: a NaN/Inf loss stops the run before a checkpoint is
# written from it (mode='skip' skips such steps instead); PreemptionHook: a
# time-limit warning (SIGUSR1) or SIGTERM/SIGINT checkpoints after the
# current iteration and stops, requeueing a Slurm job; docs/reliability.md
custom_hooks = [
    dict(type='PretrainedBackboneCheckHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='PreemptionHook')
]

# ExactResumeTrainLoop: mmengine's epoch loop whose resumed runs (also from
# a mid-epoch checkpoint) end bit for bit where an uninterrupted run would
train_cfg = dict(type='ExactResumeTrainLoop', max_epochs=70, val_interval=2)
# a rank that hangs without dying stops the job after 10 minutes (PyTorch's
# default: 30) with an error naming the collective
env_cfg = dict(dist_cfg=dict(timeout=600))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='StepLR', step_size=10, gamma=0.2, by_epoch=True, begin=0,
        end=70)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=5e-4))
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', interval=2, max_keep_ckpts=3,
        save_best='coco/bbox_mAP', rule='greater'))
