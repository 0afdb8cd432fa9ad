"""VICReg training step: ours (mmpretrain model from our config, VICRegLARS,
mmengine (Amp)OptimWrapper, ``model.train_step``) vs a plain-PyTorch copy of
the official ``main_vicreg.py`` step, same process, same device, same
synthetic inputs already on the device, interleaved (ours, ref, ours, ...),
median seconds per step.

Full mode (GPU): ResNet-50, expander 8192-8192-8192, batch 128 @224, AMP
fp16 with a dynamic GradScaler (as the official code and our
AmpOptimWrapper), LARS. ``--small``: ResNet-18, 512-512-512, batch 8 @64,
fp32 on CPU (the demo config), a few steps.

Inputs: ours gets the two views as uint8 (what the loader yields) and
normalises them in its data preprocessor, as in training; the reference
gets the already-normalised float views (its loader normalises on CPU).

Options: ``--channels-last`` (model + inputs NHWC, both sides), ``--bf16``
(autocast bf16, no loss scaling, both sides), ``--fp32`` (no autocast),
``--compile`` (``torch.compile`` of backbone and projector, both sides).

After the warm-up, one step per side runs under the profiler and a line
per side reports its top-level aten ops and host-sync ops
(``op_count.py``). Prints one JSON line per side and the ratio line last
(ours pairs/s / reference pairs/s).
"""
import copy
import os.path as osp

import harness as H
import torch
from op_count import count_ops

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))

FULL_CONFIG = 'configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled.py'
SMALL_CONFIG = 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py'


# ------------------------------------------------------------------- ours
def build_ours(args, device):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import projects.vicreg  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(ROOT, args.config))
    model_cfg = copy.deepcopy(cfg.model)
    # as mmengine's Runner: the top-level data_preprocessor (normalise,
    # BGR -> RGB)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    if args.small:
        model_cfg.backbone.depth = args.small_depth
    model = MODELS.build(model_cfg).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ow_cfg = copy.deepcopy(cfg.optim_wrapper)
    ow_cfg.optimizer.lr = args.lr
    use_amp_wrapper = device.type == 'cuda' and not args.fp32
    if use_amp_wrapper:
        ow_cfg.type = 'AmpOptimWrapper'
        ow_cfg.loss_scale = 'dynamic'
        if args.bf16:
            ow_cfg.dtype = 'bfloat16'
    else:
        ow_cfg = dict(type='OptimWrapper', optimizer=ow_cfg.optimizer)
    optim_wrapper = build_optim_wrapper(model, ow_cfg)
    if args.compile:
        model.backbone.compile()
        model.neck.compile()
    cpu_autocast = device.type == 'cpu' and args.bf16

    def step(data):
        if cpu_autocast:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return model.train_step(data, optim_wrapper)
        return model.train_step(data, optim_wrapper)

    return model, step


def build_ref(args, device):
    from projects.vicreg.reference import build_official_step
    return build_official_step(
        args.arch, args.mlp, args.lr, device,
        amp=not args.fp32 and (device.type == 'cuda' or args.bf16),
        bf16=args.bf16, channels_last=args.channels_last,
        compile=args.compile)


def main():
    parser = H.make_parser(__doc__)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps per side per round')
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--bf16', action='store_true')
    parser.add_argument('--fp32', action='store_true')
    parser.add_argument('--compile', action='store_true')
    parser.add_argument('--lr', type=float, default=0.075)
    parser.add_argument('--device', default=None)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--small-depth', type=int, default=18)
    parser.add_argument('--no-count-ops', action='store_true',
                        help='skip the profiled op / sync count step')
    args = parser.parse_args()
    H.apply_preset(
        args,
        small=dict(config=SMALL_CONFIG, arch=f'resnet{args.small_depth}',
                   mlp='512-512-512', batch=8, size=64, rounds=3, steps=2,
                   warmup=1),
        full=dict(config=FULL_CONFIG, arch='resnet50', mlp='8192-8192-8192',
                  batch=128, size=224, rounds=5, steps=10, warmup=5))
    device = H.get_device(args.device, args.threads)
    cuda = device.type == 'cuda'
    torch.manual_seed(0)

    ours, ours_step = build_ours(args, device)
    ref, ref_step = build_ref(args, device)
    n_params = dict(ours=sum(p.numel() for p in ours.parameters()),
                    ref=sum(p.numel() for p in ref.parameters()))

    B, S = args.batch, args.size
    g = torch.Generator().manual_seed(0)
    raw = [torch.randint(0, 256, (B, 3, S, S), generator=g,
                         dtype=torch.uint8) for _ in range(2)]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    fmt = torch.channels_last if args.channels_last else \
        torch.contiguous_format
    ref_views = [((r.float() - mean) / std).to(device).contiguous(
        memory_format=fmt) for r in raw]
    # ours: BGR uint8 as mmcv decodes; the preprocessor flips + normalises
    ours_views = [r.flip(1).to(device).contiguous(memory_format=fmt)
                  for r in raw]
    ours_data = dict(inputs=ours_views, data_samples=None)

    def steps(side, n):
        def run():
            for _ in range(n):
                if side == 'ours':
                    ours_step(ours_data)
                else:
                    ref_step(*ref_views)
        return run

    for side in ('ours', 'ref'):
        steps(side, args.warmup)()
    H.synchronize(device)
    if not args.no_count_ops:
        for side in ('ours', 'ref'):
            top, syncs = count_ops(steps(side, 1))
            H.emit('vicreg_step', metric='ops',
                   side='ours' if side == 'ours' else 'official',
                   aten_ops=top, sync_ops=syncs, batch=args.batch)
        H.synchronize(device)
    times, peak = H.interleave(
        dict(ours=steps('ours', args.steps), ref=steps('ref', args.steps)),
        args.rounds, device)
    flags = dict(channels_last=args.channels_last, bf16=args.bf16,
                 fp32=args.fp32, compile=args.compile)
    prec = 'fp32' if args.fp32 or (not cuda and not args.bf16) else (
        'bf16' if args.bf16 else 'fp16')
    pairs_per_s = {}
    for side, name in (('ours', 'ours_mmpretrain'), ('ref', 'official')):
        per_step = [t / args.steps for t in times[side]]
        s = H.median(per_step)
        pairs_per_s[side] = B / s
        H.emit('vicreg_step', side=name, s_per_step=round(s, 5),
               pairs_per_s=round(B / s, 2),
               runs_s=[round(t, 5) for t in per_step],
               peak_gib=round(peak[side] / 2**30, 2),
               params=n_params[side], batch=B, size=S, arch=args.arch,
               mlp=args.mlp, precision=prec, device=H.device_name(device),
               small=args.small, **flags)
    H.emit_ratio('vicreg_step', ours_over_official=round(
        pairs_per_s['ours'] / pairs_per_s['ref'], 3), **flags)


if __name__ == '__main__':
    main()
