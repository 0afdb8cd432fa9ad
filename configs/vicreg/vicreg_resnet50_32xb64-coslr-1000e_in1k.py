# VICReg, ResNet-50, the paper's ImageNet recipe (Bardes et al., ICLR 2022;
# facebookresearch/vicreg README: 4 nodes x 8 GPUs, --batch-size 2048
# --base-lr 0.2 --epochs 1000). Every other VICReg config inherits from this.
_base_ = [
    './_base_/datasets/imagenet_bs64_vicreg.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.compat', 'projects.vicreg', 'projects.engine'],
    allow_failed_imports=False)
default_scope = 'mmpretrain'

model = dict(
    type='VICReg',
    backbone=dict(
        type='ResNet',
        depth=50,
        norm_cfg=dict(type='SyncBN'),  # official: convert_sync_batchnorm
        zero_init_residual=True),
    # The "expander" 2048-8192-8192-8192: Linear(bias)+BN+ReLU, twice, then
    # Linear without bias or BN - exactly NonLinearNeck with these flags
    # (fc0-bn0-[relu-fc1-bn1]-relu-fc2; BN init weight 1 / bias 0 and
    # PyTorch's default Linear init, as the official nn.Sequential).
    neck=dict(
        type='NonLinearNeck',
        in_channels=2048,
        hid_channels=8192,
        out_channels=8192,
        num_layers=3,
        with_bias=True,
        with_last_bn=False,
        with_last_bias=False,
        with_avg_pool=True,
        norm_cfg=dict(type='SyncBN')),
    head=dict(
        type='VICRegHead',
        loss=dict(
            type='VICRegLoss', sim_coeff=25.0, std_coeff=25.0,
            cov_coeff=1.0)))

# LARS as the official code: one lr for all params, wd 1e-6, momentum 0.9,
# eta 0.001, 1-D params excluded from wd and trust ratio. Mixed precision as
# the official torch.cuda.amp (needs a GPU; the CPU demo overrides it).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='VICRegLARS', lr=0.2, weight_decay=1e-6, momentum=0.9,
        eta=0.001))
# lr = base_lr * global_batch / 256 (mmengine scales optimizer.lr by
# world_size * batch_size / base_batch_size).
auto_scale_lr = dict(base_batch_size=256, enable=True)

# Official adjust_learning_rate, per iteration: linear from exactly 0 over
# 10 epochs, then cosine to 0.001 * lr. Closed-form variants of mmengine's
# LinearLR / CosineAnnealingLR (see projects/vicreg/engine/schedulers).
warmup_epochs = 10
warmup_lr = dict(
    type='ClosedFormLinearLR',
    start_factor=0.0,
    end_factor=1.0,
    by_epoch=True,
    begin=0,
    end=warmup_epochs,
    convert_to_iter_based=True)
# No `end`: mmengine's Runner sets it to train_cfg.max_epochs, so a
# --cfg-options train_cfg.max_epochs=N run still anneals to its end.
cosine_lr = dict(
    type='ClosedFormCosineAnnealingLR',
    eta_min_ratio=1e-3,
    by_epoch=True,
    begin=warmup_epochs,
    convert_to_iter_based=True)
param_scheduler = [warmup_lr, cosine_lr]
# ExactResumeTrainLoop: mmengine's epoch loop whose resumed runs (also from
# a mid-epoch checkpoint) end bit for bit where an uninterrupted run would
# (projects/engine/loops/exact_resume_loop.py; docs/reliability.md)
train_cfg = dict(type='ExactResumeTrainLoop', max_epochs=1000)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # save_last writes work_dir/last_checkpoint, which `--resume` reads.
    checkpoint=dict(
        type='CheckpointHook', interval=10, max_keep_ckpts=3,
        save_last=True))
# NonFiniteLossHook: a NaN/Inf loss stops the run before a checkpoint is
# written from it (optim_wrapper type 'NonFiniteSkipOptimWrapper' skips such
# steps instead); PreemptionHook: a
# time-limit warning (SIGUSR1) or SIGTERM/SIGINT checkpoints after the
# current iteration and stops, requeueing a Slurm job; docs/reliability.md
custom_hooks = [
    dict(type='CollapseMonitorHook', interval=50),
    dict(type='NonFiniteLossHook'),
    dict(type='PreemptionHook')
]
# Log the collapse statistics as measured, not averaged over past checks.
log_processor = dict(custom_cfg=[
    dict(data_src=key, method_name='current')
    for key in ('emb_std', 'rankme', 'rankme_ratio')
])
# dist_cfg.timeout: a rank that hangs without dying stops the job after 10
# minutes (PyTorch's default: 30) with an error naming the collective.
env_cfg = dict(
    cudnn_benchmark=True,  # official: cudnn.benchmark = True
    dist_cfg=dict(timeout=600))
# Seeded: model init, data order and views (each loader worker seeds from
# it, mmengine's worker_init_fn). Another run: `tools/train.py --seed N`.
randomness = dict(seed=0, deterministic=False)
