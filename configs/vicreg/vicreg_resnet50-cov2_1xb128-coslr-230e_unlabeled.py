# Ablation: covariance coefficient nu 1 -> 2 (sim 25, std 25 kept).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

model = dict(head=dict(loss=dict(cov_coeff=2.0)))
