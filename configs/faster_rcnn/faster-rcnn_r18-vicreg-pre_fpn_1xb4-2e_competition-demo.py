# Small CPU demo: ResNet-18 FPN, plain BN, images within 192x192, data in
# data/demo/labeled (same layout/converter as data/labeled), batch 4, 2 epochs
# at a constant lr after warm-up, fewer RPN proposals and RoI samples: about
# 1 s per iteration on 2 CPU cores (the seed-sized heads took 2 s per batch
# of 2 at 256 px).
# Backbone from the VICReg ResNet-18 demo run (keys 'backbone.*'); override
# with --cfg-options model.backbone.init_cfg.checkpoint=PATH.
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

data_root = 'data/demo/labeled/'
# default: configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py
pretrained_ckpt = ('work_dirs/vicreg_resnet18-proj512_1xb32-coslr-10e_demo/'
                   'epoch_10.pth')
model = dict(
    backbone=dict(
        depth=18,
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(checkpoint=pretrained_ckpt)),
    neck=dict(in_channels=[64, 128, 256, 512]),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=300)))

# the base pipelines with every Resize at 192x192
img_scale = (192, 192)
train_pipeline = [
    dict(t, scale=img_scale) if t.type == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t.type == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/validation.json')
test_evaluator = dict(ann_file=data_root + 'annotations/validation.json')

train_cfg = dict(max_epochs=2, val_interval=1)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=50)
]
default_hooks = dict(logger=dict(interval=10))
