# Ablation (schedule only): the recommended recipe with the original's
# StepLR(10, 0.2) for epochs 0-39 (0.005 / 1e-3 / 2e-4 / 4e-5), then the
# command-line lr 0.005 held constant for epochs 40-69 ("constant lr from
# epoch 40"; the -frozenbn_...-70e-original config, their actual run, keeps
# StepLR decaying after 40).
_base_ = [
    './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py',
    './_base_/schedules/original_steplr_to_40e.py'
]

param_scheduler = _base_.original_lr_to_40e  # then constant to epoch 70
