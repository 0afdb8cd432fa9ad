# The demo's detector comparison (tools/run_demo.py): one config for both
# columns, which differ only in the backbone file given on the command line
# (model.backbone.init_cfg.checkpoint=): the VICReg run's checkpoint, or the
# same seed's random initialisation saved as a checkpoint by
# tools/analysis_tools/knn_eval.py --save-random. Loading either the same way
# consumes the same random numbers, so a seed gives both columns the same
# head initialisation and data order.
#
# A head for the demo's 6 classes (tools/generate_demo_data.py,
# DEMO_CLASSES; the competition configs keep 100), a schedule that trains
# well past its warm-up, and images within 128x128 with fewer proposals so
# that both columns fit the demo's budget on a 2-core CPU.
_base_ = './faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py'

metainfo = dict(classes=('cup or mug', 'bird', 'hat with a wide brim',
                         'person', 'dog', 'lizard'))
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=None)),  # given by the caller
    roi_head=dict(bbox_head=dict(num_classes=len(metainfo['classes']))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

img_scale = (128, 128)
train_pipeline = [
    dict(t, scale=img_scale) if t.type == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t.type == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    dataset=dict(metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=3, val_interval=3)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=25)
]
default_hooks = dict(checkpoint=dict(interval=3, save_best=None))
