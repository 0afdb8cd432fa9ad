# Soft Teacher (Xu et al., "End-to-End Semi-Supervised Object Detection with
# Soft Teacher", ICCV 2021) on the competition data: the labeled stream is
# the converted training split, the unlabeled stream the unlabeled image
# folder (UnlabeledDetDataset: image info only, no annotation file).
# The augmentations are mmdet's (configs/_base_/datasets/
# semi_coco_detection.py in mmdet 3.3), restated because that file also
# defines the COCO dataloaders this project's bases already define (mmengine
# refuses duplicate keys among bases). Only names the supervised configs do
# not define live here; the top configs wire them (see soft-teacher_*.py).

# The labeled:unlabeled mix of every batch, [labeled, unlabeled], for
# mmdet's MultiSourceSampler (mmdet's configs: 1:4 at batch 5).
# Not mmdet's GroupMultiSourceSampler: it loops forever without an error as
# soon as it draws an aspect-ratio group (w < h or not) that one source lacks
# (open-mmlab/mmdetection#12327), and the competition's unlabeled images are
# all 224x224 while some labeled ones are portrait
# (tests/projects/detection/test_det_semi.py).
source_ratio = [1, 1]
unlabeled_root = 'data/unlabeled/'
# The competition's unlabeled PNGs are all 224x224: width/height of the data
# list without 512,000 file opens (None reads each header).
unlabeled_img_size = (224, 224)

semi_train_cfg = dict(
    freeze_teacher=True,
    sup_weight=1.0,
    unsup_weight=4.0,
    pseudo_label_initial_score_thr=0.5,
    rpn_pseudo_thr=0.9,
    cls_pseudo_thr=0.9,
    reg_pseudo_thr=0.02,
    jitter_times=10,
    jitter_scale=0.06,
    min_pseudo_bbox_wh=(1e-2, 1e-2))

color_space = [
    [dict(type='ColorTransform')],
    [dict(type='AutoContrast')],
    [dict(type='Equalize')],
    [dict(type='Sharpness')],
    [dict(type='Posterize')],
    [dict(type='Solarize')],
    [dict(type='Color')],
    [dict(type='Contrast')],
    [dict(type='Brightness')],
]
geometric = [
    [dict(type='Rotate')],
    [dict(type='ShearX')],
    [dict(type='ShearY')],
    [dict(type='TranslateX')],
    [dict(type='TranslateY')],
]
semi_scale = [(1333, 400), (1333, 1200)]
branch_field = ['sup', 'unsup_teacher', 'unsup_student']
# As competition_detection.py: the stored pixels (boxes ignore EXIF).
load_image = dict(
    type='LoadImageFromFile', color_type='color_ignore_orientation')

# labeled -> student, supervised loss
sup_pipeline = [
    load_image,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=semi_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandAugment', aug_space=color_space, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        sup=dict(type='PackDetInputs'))
]
semi_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction',
                   'homography_matrix')
# unlabeled, weak view -> teacher, pseudo boxes
weak_pipeline = [
    dict(type='RandomResize', scale=semi_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=semi_meta_keys),
]
# unlabeled, strong view -> student, loss on the pseudo boxes
strong_pipeline = [
    dict(type='RandomResize', scale=semi_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomOrder',
        transforms=[
            dict(type='RandAugment', aug_space=color_space, aug_num=1),
            dict(type='RandAugment', aug_space=geometric, aug_num=1),
        ]),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs', meta_keys=semi_meta_keys),
]
# LoadEmptyAnnotations: the unlabeled stream never reads a label
unsup_pipeline = [
    load_image,
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        unsup_teacher=weak_pipeline,
        unsup_student=strong_pipeline,
    )
]

# What the top configs put around their detector and labeled dataset:
#   model = dict(semi_model, detector=..., data_preprocessor=...)
#   train_dataloader = dict(semi_train_dataloader, dataset=... [labeled,
#                           unlabeled_dataset])
semi_model = dict(
    type='SoftTeacher',
    semi_train_cfg=semi_train_cfg,
    semi_test_cfg=dict(predict_on='teacher'))
unlabeled_dataset = dict(
    type='UnlabeledDetDataset',
    data_root=unlabeled_root,
    img_size=unlabeled_img_size,
    pipeline=unsup_pipeline)
semi_batch_size = 4
semi_train_dataloader = dict(
    batch_size=semi_batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(
        type='MultiSourceSampler',  # not GroupMultiSourceSampler: see above
        batch_size=semi_batch_size,
        source_ratio=source_ratio),
    dataset=dict(
        type='ConcatDataset',
        datasets=[],  # [labeled, unlabeled]
        # the unlabeled images have no classes: the labeled set's metainfo
        ignore_keys=['classes', 'palette']))
