# The demo's Soft Teacher (tools/run_demo.py --semi): the 6-class demo
# detector (configs/faster_rcnn/faster-rcnn_r18-pre_fpn_1xb4-3e_demo-6cls.py)
# inside mmdet's SoftTeacher, with a burn-in: the caller starts it from that
# detector's supervised fine-tune (load_from=...; mmdet's SemiBaseDetector
# loads a plain detector checkpoint into student and teacher), so the
# teacher detects from the first step instead of teaching "background".
# The unlabeled stream is generated scenes (tools/generate_demo_data.py:
# data/demo_scenes/unlabeled/), whose held-out boxes (unlabeled_boxes.json,
# beside the folder, never read by the data pipeline) let
# PseudoLabelQualityHook log the pseudo boxes' precision and recall.
_base_ = ('./soft-teacher_faster-rcnn_r18-vicreg-pre_fpn_1xb4-150it_'
          'competition-demo.py')

metainfo = dict(classes=('cup or mug', 'bird', 'hat with a wide brim',
                         'person', 'dog', 'lizard'))
scenes_root = 'data/demo_scenes/'
load_from = None  # the supervised fine-tune's checkpoint, given by the caller

model = dict(
    type='RecordingSoftTeacher',
    detector=dict(
        backbone=dict(init_cfg=None),  # load_from replaces every weight
        roi_head=dict(bbox_head=dict(num_classes=len(metainfo['classes']))),
        train_cfg=dict(
            rpn_proposal=dict(nms_pre=500, max_per_img=100),
            rcnn=dict(sampler=dict(num=64))),
        test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100))))

# the supervised demo's 128 px (long side) for both streams
semi_scale = [(128, 96), (128, 128)]


def at_semi_scale(transforms):
    """``transforms`` with every RandomResize, also in MultiBranch's
    branches, at ``semi_scale``. (The parent's ``at_demo_scale`` is not
    visible here: mmengine drops a base config's functions, and an import
    would turn this into a lazy-import config.)"""
    out = []
    for t in transforms:
        if t['type'] == 'RandomResize':
            t = dict(t, scale=semi_scale)
        elif t['type'] == 'MultiBranch':
            t = dict(t, **{b: at_semi_scale(t[b]) for b in t['branch_field']
                           if isinstance(t.get(b), list)})
        out.append(t)
    return out


test_pipeline = [
    dict(t, scale=(128, 128)) if t.type == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(_base_.labeled_dataset, metainfo=metainfo,
             pipeline=at_semi_scale(_base_.sup_pipeline)),
        dict(_base_.unlabeled_dataset, data_root=scenes_root + 'unlabeled/',
             pipeline=at_semi_scale(_base_.unsup_pipeline)),
    ]))
val_dataloader = dict(
    dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

custom_hooks = [
    dict(type='PretrainedBackboneCheckHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='MeanTeacherHook', momentum=0.02),
    dict(type='PseudoLabelQualityHook',
         ann_file=scenes_root + 'unlabeled_boxes.json', interval=10),
    dict(type='PreemptionHook')
]
# no warm-up: training goes on from a trained detector
param_scheduler = []
