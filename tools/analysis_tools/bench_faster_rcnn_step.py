"""Faster R-CNN training step: our baseline-recipe detector
(configs/faster_rcnn/faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py,
mmdet ``model.train_step``, SGD lr 0.005 m 0.9 wd 5e-4 through mmengine's
(Amp)OptimWrapper) vs torchvision's ``fasterrcnn_resnet50_fpn(num_classes=101,
weights=None, weights_backbone=None)`` with the same SGD, on identical
synthetic inputs already on the device (same pixels, same boxes; labels
0..99 for ours, 1..100 for torchvision whose 0 is background), interleaved
(ours, ref, ours, ...), median seconds per step.

Full mode (GPU): batch 8 at 800x1066 (no resize in either: torchvision's
transform keeps 800x1066 at min_size 800 / max_size 1333; both pad to
800x1088), fp32 then AMP (fp16 autocast + dynamic GradScaler).
``--small``: ResNet-50 at 192x256, batch 2, fp32, few steps (CPU).

``ours`` enables the opt-in ``CachedAnchorGenerator``. A third side,
``stock_mmdet``, is the same config with mmdet's own
``RPNHead``, ``AnchorGenerator`` and ``MaxIoUAssigner`` in place of our
``BatchedRPNHead``, ``CachedAnchorGenerator`` and ``SyncFreeMaxIoUAssigner``
(identical losses and gradients,
tests/projects/detection/test_det_step_equivalence.py): the A/B of those
changes.

Before timing, one step per side runs under ``torch.profiler`` (CPU
activity only) and a line per side reports its top-level aten ops (on a GPU
roughly the kernel launches) and its host-sync ops (``aten::nonzero`` and
``aten::_local_scalar_dense``, i.e. ``.item()`` / ``bool(tensor)``) at any
depth: device-independent figures of framework overhead.

``--mmcv-ops-ab``: where compiled mmcv is installed (the runtime uses it),
a fourth side ``ours_tv_ops`` runs our detector with mmcv's nms/RoIAlign on
torchvision's kernels (projects/compat/mmcv_ops.py), interleaved with it: the
A/B of the two ops backends.

Prints one JSON line per (precision, side) and the ratio line last
(img/s ratios per precision: ours / torchvision, stock mmdet / torchvision,
ours / stock mmdet).

``--shapes keep-ratio``: the A/B of ``CachedAnchorGenerator`` alone on a
realistic shape distribution instead: images of about 640x480 (480-640
wide, aspect 3:4 / 2:3 / 9:16 / 1:1, a quarter of them portrait) resized
keep-ratio to 800/1333 as the dataset configs do, batches of one
orientation (as ``AspectRatioBatchSampler``), padded to 32 by the model's
preprocessor; sides ``cached`` and ``uncached`` are the config's detector
with and without the cache (nothing else differs), stepping through the
same batches, interleaved. Each line adds the time spent in
``rpn_head.get_anchors`` per step and the caches' hits, misses and bytes;
a last line replays a whole epoch of batch shapes (``--epoch-batches``)
through the generator alone for the hit rate and memory a real run sees.
"""
import copy
import json
import os.path as osp
import statistics
import sys
import time

import harness as H
import torch
from op_count import count_ops

from projects.compat.amp import autocast, grad_scaler

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))

CONFIG = ('configs/faster_rcnn/'
          'faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py')


STOCK_TYPES = dict(CachedAnchorGenerator='AnchorGenerator',
                   SyncFreeMaxIoUAssigner='MaxIoUAssigner',
                   BatchedRPNHead='RPNHead')


def to_stock(model_cfg):
    """Our detector config with mmdet's stock RPN head, anchor generator and
    assigners."""
    head = model_cfg.rpn_head
    head.type = STOCK_TYPES.get(head.type, head.type)
    gen = model_cfg.rpn_head.anchor_generator
    gen.type = STOCK_TYPES.get(gen.type, gen.type)
    for stage in ('rpn', 'rcnn'):
        a = model_cfg.train_cfg[stage].assigner
        a.type = STOCK_TYPES.get(a.type, a.type)
    return model_cfg


def build_ours(args, device, stock=False, anchor_cache=None):
    """The config's detector; ``stock``: mmdet's RPN head, anchor generator
    and assigners; ``anchor_cache`` True/False: that generator only."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import projects.detection  # noqa: F401
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, args.config))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # random init, like the reference
    if stock:
        model_cfg = to_stock(model_cfg)
    if anchor_cache is None:
        anchor_cache = getattr(args, 'anchor_cache', None)
    if anchor_cache is not None:
        model_cfg.rpn_head.anchor_generator.type = (
            'CachedAnchorGenerator' if anchor_cache else 'AnchorGenerator')
    torch.manual_seed(0)  # ours and stock start from the same weights
    model = MODELS.build(model_cfg).to(device)
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every tensor
    model.init_weights()
    logger.setLevel(level)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return model, cfg


def ours_wrapper(model, cfg, amp):
    from mmengine.optim import build_optim_wrapper
    opt = copy.deepcopy(cfg.optim_wrapper.optimizer)
    ow = dict(type='AmpOptimWrapper', loss_scale='dynamic',
              optimizer=opt) if amp else dict(type='OptimWrapper',
                                              optimizer=opt)
    if amp and args_bf16[0]:
        ow['dtype'] = 'bfloat16'
    return build_optim_wrapper(model, ow)


args_bf16 = [False]


def build_ref(args, device, height, width):
    import torchvision
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=101,
        min_size=min(height, width), max_size=max(height, width))
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return model


def make_inputs(args, device):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    B, height, width = args.batch, args.height, args.width
    imgs = torch.randint(0, 256, (B, 3, height, width), generator=g,
                         dtype=torch.uint8)
    boxes, labels = [], []
    for _ in range(B):
        n = args.boxes
        xy = torch.rand(n, 2, generator=g) * torch.tensor(
            [width * 0.7, height * 0.7])
        wh = (torch.rand(n, 2, generator=g) * 0.25 + 0.05) * torch.tensor(
            [width, height])
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.randint(0, 100, (n, ), generator=g))
    # ours: BGR uint8 as mmcv loads (the preprocessor flips to RGB)
    ours_inputs = [im.flip(0).to(device) for im in imgs]
    samples = []
    for b, lab in zip(boxes, labels):
        ds = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), flip=False))
        ds.gt_instances = InstanceData(bboxes=b.to(device),
                                       labels=lab.to(device))
        samples.append(ds)
    ours_data = dict(inputs=ours_inputs, data_samples=samples)
    ref_imgs = [im.float().div(255).to(device) for im in imgs]
    ref_targets = [dict(boxes=b.to(device), labels=(lab + 1).to(device))
                   for b, lab in zip(boxes, labels)]
    return ours_data, ref_imgs, ref_targets


def keep_ratio_shapes(n: int, batch: int, seed: int = 0,
                      scale=(1333, 800)) -> list:
    """``n`` batches of (h, w) image shapes after keep-ratio resizing of
    about-640x480 images (width 480-640, height 0.5-1.0 of it, a quarter
    portrait); each batch one orientation."""
    import random
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        portrait = rng.random() < 0.25
        shapes = []
        for _ in range(batch):
            w0 = rng.randint(480, 640)
            h0 = rng.randint(w0 // 2, w0)
            if portrait:
                w0, h0 = h0, w0
            f = min(max(scale) / max(h0, w0), min(scale) / min(h0, w0))
            shapes.append((int(h0 * f + 0.5), int(w0 * f + 0.5)))
        out.append(shapes)
    return out


def _pad(x: int) -> int:  # DetDataPreprocessor's pad_size_divisor=32
    return -(-x // 32) * 32


def anchors_ab(models: dict, shapes: list, device, sync) -> dict:
    """``rpn_head.get_anchors`` alone for every batch of ``shapes`` on each
    model, interleaved (order alternating per batch): seconds per call."""
    total = {k: 0.0 for k in models}
    names = list(models)
    for i, batch in enumerate(shapes):
        H = max(_pad(h) for h, _ in batch)
        W = max(_pad(w) for _, w in batch)
        sizes = [(-(-H // s), -(-W // s)) for s in (4, 8, 16, 32, 64)]
        metas = [dict(pad_shape=(_pad(h), _pad(w)), img_shape=(h, w),
                      batch_input_shape=(H, W)) for h, w in batch]
        for name in (names if i % 2 == 0 else names[::-1]):
            sync()
            t0 = time.perf_counter()
            models[name].rpn_head.get_anchors(sizes, metas, device=device)
            sync()
            total[name] += time.perf_counter() - t0
    return {k: v / max(1, len(shapes)) for k, v in total.items()}


def make_batch(shapes, boxes: int, device, seed: int) -> dict:
    """Model inputs of the given (h, w) shapes with random boxes."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g,
                                    dtype=torch.uint8).to(device))
        xy = torch.rand(boxes, 2, generator=g) * torch.tensor([w, h]) * 0.7
        wh = (torch.rand(boxes, 2, generator=g) * 0.25 + 0.05) * \
            torch.tensor([w, h])
        ds = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
            flip=False))
        ds.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1).to(device),
            labels=torch.randint(0, 100, (boxes, ), generator=g).to(device))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


class AnchorTimer:
    """Seconds spent in ``rpn_head.get_anchors`` (wraps the bound method)."""

    def __init__(self, model, sync) -> None:
        self.total, self.calls = 0.0, 0
        head, inner = model.rpn_head, model.rpn_head.get_anchors

        def timed(*a, **k):
            sync()
            t0 = time.perf_counter()
            out = inner(*a, **k)
            sync()
            self.total += time.perf_counter() - t0
            self.calls += 1
            return out
        head.get_anchors = timed


def cache_stats(model) -> dict:
    gen = model.rpn_head.prior_generator
    if not hasattr(gen, 'priors_cache'):
        return {}
    return {name: dict(hits=c.hits, misses=c.misses, entries=len(c.entries),
                       mib=round(c.nbytes / 2**20, 1))
            for name, c in (('priors', gen.priors_cache),
                            ('flags', gen.flags_cache))}


def bench_keep_ratio(args, device) -> None:
    """A/B of the anchor cache alone on keep-ratio shapes (see the module
    docstring)."""
    from mmengine.optim import build_optim_wrapper
    cuda = device.type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    from mmdet.registry import TASK_UTILS

    from projects.detection.models.cached_anchor_generator import \
        CachedAnchorGenerator
    cached, cfg = build_ours(args, device, anchor_cache=True)
    uncached, _ = build_ours(args, device, anchor_cache=False)
    assert isinstance(cached.rpn_head.prior_generator,
                      CachedAnchorGenerator)
    assert not isinstance(uncached.rpn_head.prior_generator,
                          CachedAnchorGenerator)
    total = args.warmup + args.rounds * args.steps
    shapes = keep_ratio_shapes(total, args.batch)
    batches = [make_batch(s, args.boxes, device, seed=i)
               for i, s in enumerate(shapes)]
    # whole training steps (--rounds 0: only the anchor part below)
    sides = dict(cached=cached, uncached=uncached) if args.rounds else {}
    wrappers = {k: build_optim_wrapper(m, dict(
        type='OptimWrapper',
        optimizer=copy.deepcopy(cfg.optim_wrapper.optimizer)))
        for k, m in sides.items()}
    timers = {k: AnchorTimer(m, sync) for k, m in sides.items()}
    pos = {k: 0 for k in sides}

    def run(side, n):
        for _ in range(n):
            sides[side].train_step(batches[pos[side]], wrappers[side])
            pos[side] += 1

    for side in sides:
        run(side, args.warmup)
    for t in timers.values():
        t.total, t.calls = 0.0, 0
    times = {k: [] for k in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in order:
            sync()
            t0 = time.perf_counter()
            run(side, args.steps)
            sync()
            times[side].append((time.perf_counter() - t0) / args.steps)
    for side in sides:
        s = statistics.median(times[side])
        print(json.dumps(dict(
            bench='faster_rcnn_step', shapes='keep-ratio', side=side,
            s_per_step=round(s, 4), runs_s=[round(t, 4) for t in
                                            times[side]],
            anchor_ms_per_step=round(
                1e3 * timers[side].total / max(1, timers[side].calls), 3),
            batch=args.batch, cache=cache_stats(sides[side]),
            distinct_shapes=len({tuple(map(tuple, b)) for b in shapes}),
            device=str(torch.cuda.get_device_name(device)
                       if cuda else 'cpu'))), flush=True)
    # the anchor part alone over an epoch's worth of batch shapes, with an
    # empty cache (the hit rate and memory a real run sees)
    cached.rpn_head.prior_generator = TASK_UTILS.build(
        dict(cfg.model.rpn_head.anchor_generator,
             type='CachedAnchorGenerator', cache_mib=args.cache_mib))
    fresh = dict(cached=cached, uncached=uncached)
    epoch = keep_ratio_shapes(args.epoch_batches, args.batch, seed=1)
    per_call = anchors_ab(fresh, epoch, device, sync)
    distinct = len({(max(_pad(h) for h, _ in b), max(_pad(w) for _, w in b))
                    for b in epoch})
    print(json.dumps(dict(
        bench='faster_rcnn_step', metric='anchors_epoch', batch=args.batch,
        batches=len(epoch), distinct_batch_shapes=distinct,
        anchor_ms_per_step={k: round(1e3 * v, 3)
                            for k, v in per_call.items()},
        cache=cache_stats(fresh['cached']),
        device=str(torch.cuda.get_device_name(device)
                   if cuda else 'cpu'))), flush=True)


def main():
    parser = H.make_parser(__doc__)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--height', type=int, default=None)
    parser.add_argument('--width', type=int, default=None)
    parser.add_argument('--boxes', type=int, default=6)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--steps', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=None)
    parser.add_argument('--precisions', default=None,
                        help='comma list of fp32,amp (default both on GPU, '
                        'fp32 on CPU)')
    parser.add_argument('--bf16', action='store_true',
                        help='"amp" autocasts to bf16 (no loss scaling)')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--device', default=None)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--mmcv-ops-ab', action='store_true',
                        help='also time our detector on the torchvision ops '
                        'backend (needs compiled mmcv installed)')
    parser.add_argument('--no-count-ops', action='store_true',
                        help='skip the profiled op / sync count step')
    parser.add_argument('--shapes', choices=['fixed', 'keep-ratio'],
                        default='fixed',
                        help='keep-ratio: A/B of the anchor cache alone on '
                        'about-640x480 images resized to 800/1333')
    parser.add_argument('--epoch-batches', type=int, default=3750,
                        help='keep-ratio: batches replayed for the hit rate '
                        '(3,750 = the 30,000 training images at batch 8)')
    parser.add_argument('--cache-mib', type=float, default=32.0,
                        help='keep-ratio: byte budget per anchor cache for '
                        'the epoch replay')
    args = parser.parse_args()
    H.apply_preset(
        args,
        small=dict(batch=2, height=192, width=256, rounds=3, steps=1,
                   warmup=1),
        full=dict(batch=8, height=800, width=1066, rounds=5, steps=8,
                  warmup=4))
    args_bf16[0] = args.bf16
    device = H.get_device(args.device, args.threads)
    cuda = device.type == 'cuda'
    precisions = (args.precisions or ('fp32,amp' if cuda else 'fp32')
                  ).split(',')
    torch.manual_seed(0)
    if args.shapes == 'keep-ratio':
        bench_keep_ratio(args, device)
        return

    # ours: with the (opt-in) anchor cache, so the A/B covers all three
    ours, cfg = build_ours(args, device, anchor_cache=True)
    stock, _ = build_ours(args, device, stock=True)
    ref = build_ref(args, device, args.height, args.width)
    ours_data, ref_imgs, ref_targets = make_inputs(args, device)
    opt_cfg = cfg.optim_wrapper.optimizer
    ref_opt = torch.optim.SGD(ref.parameters(), lr=opt_cfg.lr,
                              momentum=opt_cfg.momentum,
                              weight_decay=opt_cfg.weight_decay)

    ratios = {}
    for prec in precisions:
        amp = prec == 'amp'
        dtype = torch.bfloat16 if args.bf16 else torch.float16
        ow = ours_wrapper(ours, cfg, amp and cuda)
        stock_ow = ours_wrapper(stock, cfg, amp and cuda)
        scaler = grad_scaler(
            device.type, enabled=amp and dtype == torch.float16)
        cpu_autocast = amp and not cuda

        def mmdet_step(model, wrapper):
            if cpu_autocast:
                with torch.autocast('cpu', dtype=dtype):
                    return model.train_step(ours_data, wrapper)
            return model.train_step(ours_data, wrapper)

        def ours_step():
            return mmdet_step(ours, ow)

        def stock_step():
            return mmdet_step(stock, stock_ow)

        def ref_step():
            ref_opt.zero_grad()
            with autocast(device.type, dtype, enabled=amp):
                losses = ref(ref_imgs, ref_targets)
                loss = sum(losses.values())
            scaler.scale(loss).backward()
            scaler.step(ref_opt)
            scaler.update()

        steps = dict(ours=ours_step, stock=stock_step, ref=ref_step)
        names = dict(ours='ours_mmdet', stock='stock_mmdet', ref='torchvision')
        if args.mmcv_ops_ab:
            from projects.compat import mmcv_ops
            if mmcv_ops.ops_backend() != 'compiled':
                sys.exit('--mmcv-ops-ab needs compiled mmcv (mmcv._ext)')
            tv_ext = mmcv_ops.torchvision_ext()

            def ours_tv_step():
                with mmcv_ops.use_ext(tv_ext):
                    return ours_step()

            steps['ours_tv'] = ours_tv_step
            names['ours_tv'] = 'ours_tv_ops'
            names['ours'] = 'ours_mmdet_compiled_ops'
        for side in steps:
            for _ in range(args.warmup):
                steps[side]()
        H.synchronize(device)
        if prec == precisions[0] and not args.no_count_ops:
            for side in steps:
                top, syncs = count_ops(steps[side])
                H.emit('faster_rcnn_step', metric='ops', side=names[side],
                       precision=prec, aten_ops=top, sync_ops=syncs,
                       batch=args.batch, boxes_per_img=args.boxes)
            H.synchronize(device)

        def repeat(step):
            def run():
                for _ in range(args.steps):
                    step()
            return run

        times, peak = H.interleave(
            {side: repeat(step) for side, step in steps.items()},
            args.rounds, device)
        img_per_s = {}
        for side, name in names.items():
            per_step = [t / args.steps for t in times[side]]
            s = H.median(per_step)
            img_per_s[side] = args.batch / s
            H.emit('faster_rcnn_step', side=name, precision=(
                       ('bf16' if args.bf16 else 'amp_fp16') if amp else prec),
                   s_per_step=round(s, 5), img_per_s=round(img_per_s[side], 2),
                   runs_s=[round(t, 5) for t in per_step],
                   peak_gib=round(peak[side] / 2**30, 2), batch=args.batch,
                   size=[args.height, args.width],
                   channels_last=args.channels_last,
                   device=H.device_name(device), small=args.small)
        ratios[prec] = dict(
            ours_over_torchvision=round(img_per_s['ours'] / img_per_s['ref'],
                                        3),
            stock_over_torchvision=round(
                img_per_s['stock'] / img_per_s['ref'], 3),
            ours_over_stock=round(img_per_s['ours'] / img_per_s['stock'], 3))
        if 'ours_tv' in img_per_s:
            ratios[prec]['tv_ops_over_compiled_ops'] = round(
                img_per_s['ours_tv'] / img_per_s['ours'], 3)
    H.emit_ratio('faster_rcnn_step', **ratios)


if __name__ == '__main__':
    main()
