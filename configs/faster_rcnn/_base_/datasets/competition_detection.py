# Competition detection data (images/{n}.JPEG + labels/{n}.yml per split),
# read through COCO jsons made by tools/dataset_converters/yaml_to_coco.py:
#   python tools/dataset_converters/yaml_to_coco.py data/labeled training \
#       data/labeled/annotations/training.json
#   python tools/dataset_converters/yaml_to_coco.py data/labeled validation \
#       data/labeled/annotations/validation.json
# CompetitionDataset: mmdet's CocoDataset with the competition's 100 classes
# (projects/detection/datasets/competition_dataset.py holds the list); label
# i (0-based, "cup or mug" = 0) is COCO category i + 1, background label 100.
dataset_type = 'CompetitionDataset'
data_root = 'data/labeled/'
backend_args = None

# color_ignore_orientation: the stored pixels, as the labels (image_size and
# boxes match PIL's size, which ignores EXIF); OpenCV's default 'color'
# would rotate EXIF-tagged JPEGs away from their boxes.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args,
         color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args,
         color_type='color_ignore_orientation'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/training.json',
        data_prefix=dict(img='training/images/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/validation.json',
        data_prefix=dict(img='validation/images/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# pycocotools-default COCOeval (maxDets 1/10/100) on the converted json:
# all 12 stats (projects/detection/evaluation/metrics/
# competition_coco_metric.py); the test evaluator adds per-class AP
# (tools/test.py writes them to the work dir).
val_evaluator = dict(
    type='CompetitionCocoMetric',
    ann_file=data_root + 'annotations/validation.json',
    metric='bbox',
    classwise=False,
    format_only=False,
    backend_args=backend_args)
test_evaluator = dict(val_evaluator, classwise=True)
