# Ablation: mmdet's labeled:unlabeled mix, 1:4: per GPU 1 labeled + 4
# unlabeled images (batch 5), so 4 labeled images per step instead of 8.
_base_ = './soft-teacher_faster-rcnn_r50-vicreg-pre_fpn_4xb4-180k_competition.py'

batch_size = 5
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(batch_size=batch_size, source_ratio=[1, 4]))
