# Small CPU demo of Soft Teacher: the ResNet-18 demo detector
# (configs/faster_rcnn/faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py,
# VICReg demo backbone) inside mmdet's SoftTeacher, with the demo's unlabeled
# folder as the unlabeled stream.
# Same budget in images seen as the supervised demo (2 epochs x 300 images
# at batch 4 = 150 steps of 4 images): 150 steps of 2 labeled + 2 unlabeled.
# Images within 192x192 as the supervised demo (mmdet's 400-1200 scale range
# around 800 becomes 128-192 around 192).
# Teacher EMA momentum 0.02 instead of mmdet's 0.001: after 150 steps the
# initial weights keep (1 - m)^150 of the teacher, 0.05 here, 0.86 with 0.001.
# Validation evaluates the teacher only (ValLoop on predict_on='teacher'),
# half the time of TeacherStudentValLoop.
_base_ = [
    '../faster_rcnn/faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py',
    './_base_/semi_competition_detection.py'
]

unlabeled_root = 'data/demo/unlabeled/'

detector = _base_.model
model = dict(
    _base_.semi_model,
    _delete_=True,
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor))

demo_scale = [(192, 128), (192, 192)]


def at_demo_scale(transforms):
    """``transforms`` with every RandomResize, also in MultiBranch's
    branches, at ``demo_scale``."""
    out = []
    for t in transforms:
        if t['type'] == 'RandomResize':
            t = dict(t, scale=demo_scale)
        elif t['type'] == 'MultiBranch':  # branches: pipelines (lists)
            t = dict(t, **{b: at_demo_scale(t[b]) for b in t['branch_field']
                           if isinstance(t.get(b), list)})
        out.append(t)
    return out


sup_pipeline = at_demo_scale(_base_.sup_pipeline)
unsup_pipeline = at_demo_scale(_base_.unsup_pipeline)

labeled_dataset = dict(_base_.train_dataloader.dataset,
                       pipeline=sup_pipeline)
unlabeled_dataset = dict(
    _base_.unlabeled_dataset,
    data_root=unlabeled_root,
    img_size=None,  # 2,000 headers: read them
    pipeline=unsup_pipeline)
train_dataloader = dict(
    _base_.semi_train_dataloader,
    _delete_=True,
    num_workers=1,
    dataset=dict(
        _base_.semi_train_dataloader.dataset,
        datasets=[labeled_dataset, unlabeled_dataset]))

custom_hooks = [
    dict(type='PretrainedBackboneCheckHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='MeanTeacherHook', momentum=0.02),
    dict(type='PreemptionHook')
]

# Gradient clipping: without it a demo run diverged within 30 steps
# (docs/semi_supervised.md). Likely cause (not isolated): the unlabeled classification
# loss is rescaled by len(weights) / sum(weights), up to ~100x while the
# teacher's background scores are ~1/101, and the demo's lr per image is 5x
# mmdet's recipe (0.005 / 4 vs 0.01 / 40).
optim_wrapper = dict(clip_grad=dict(max_norm=10, norm_type=2))

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=150,
    val_interval=75)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=75),
    logger=dict(interval=10))
log_processor = dict(by_epoch=False)
