# Semi-supervised fine-tuning: mmdet's SoftTeacher around the seed detector
# (configs/faster_rcnn/faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py,
# VICReg backbone through init_cfg, checked by PretrainedBackboneCheckHook on
# student and teacher). Xu et al., "End-to-End Semi-Supervised Object
# Detection with Soft Teacher", ICCV 2021; mmdet configs/soft_teacher/.
# - batch 16 = 4 GPUs x (2 labeled + 2 unlabeled) (source_ratio [1, 1]):
#   the supervised recipe's 8 labeled images per step, plus 8 unlabeled;
# - the teacher is an EMA of the student (MeanTeacherHook, momentum 0.001 as
#   mmdet), predicts the pseudo boxes and is what val/test/infer evaluate
#   (semi_test_cfg.predict_on='teacher'; validation reports teacher/* and
#   student/*; tools/test.py evaluates the teacher);
# - mmdet's 180k-iteration schedule (= 48 epochs of the 30,000 labeled
#   images), steps at 120k/160k, SGD lr 0.005 as the supervised recipe.
# Unlabeled folder: --cfg-options
#   train_dataloader.dataset.datasets.1.data_root=DIR
# VICReg checkpoint: --cfg-options model.detector.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '../faster_rcnn/faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py',
    './_base_/semi_competition_detection.py'
]

detector = _base_.model
model = dict(
    _base_.semi_model,
    _delete_=True,
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor))

labeled_dataset = dict(_base_.train_dataloader.dataset,
                       pipeline=_base_.sup_pipeline)
train_dataloader = dict(
    _base_.semi_train_dataloader,
    _delete_=True,
    dataset=dict(
        _base_.semi_train_dataloader.dataset,
        datasets=[labeled_dataset, _base_.unlabeled_dataset]))

custom_hooks = [
    dict(type='PretrainedBackboneCheckHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='MeanTeacherHook', momentum=0.001),
    dict(type='PreemptionHook')
]

max_iters = 180000
val_interval = 7500  # ~ every 2 labeled epochs, as the supervised recipe
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=val_interval)
val_cfg = dict(type='TeacherStudentValLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
        milestones=[120000, 160000], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False, interval=val_interval, max_keep_ckpts=3,
        save_best='teacher/coco/bbox_mAP', rule='greater'))
log_processor = dict(by_epoch=False)
