# Ablation: expander width 2048-2048-2048 (the baseline recipe uses 8192).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

model = dict(neck=dict(hid_channels=2048, out_channels=2048))
