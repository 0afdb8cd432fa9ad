# Ablation: invariance coefficient lambda 25 -> 50 (std 25, cov 1 kept).
_base_ = ['./vicreg_resnet50_1xb128-coslr-230e_unlabeled.py']

model = dict(head=dict(loss=dict(sim_coeff=50.0)))
