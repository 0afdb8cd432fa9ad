#!/usr/bin/env python
"""Golden outputs of mmcv's compiled ops, and the check of the torchvision
backend (``projects/compat/mmcv_ops.py``) against them.

``--record`` (needs compiled mmcv 2.1.0, e.g. ``PYTHONPATH=/path/to/compiled``)
runs every op case below on ``mmcv._ext`` and writes inputs and outputs to
``tests/data/mmcv_ops_goldens.pt``; ``--check`` (the default) runs the same
cases on the torchvision backend and compares: NMS indices identical (order
included), RoIAlign forward/backward within ``RTOL``. These op-level checks
hold on any CPU.

A whole detector is not compared with recorded numbers: its convolutions'
reduction order differs between CPUs (and thread counts), which moves
gradients by more than any tolerance tight enough to catch a wrong op. So
``--check`` also runs three SGD steps of the demo Faster R-CNN on this
machine and, at every step, the same model state and batch once more on
:func:`reference_ext`, mmcv's nms and RoIAlign written from their formulas in
plain torch (itself checked against the goldens), and compares losses and
gradients. tests/projects/compat/test_mmcv_ops.py runs the checks in CI.
"""
import argparse
import copy
import math
import os
import os.path as osp
import sys
import types
from typing import Dict, List, Optional, Tuple

import torch

import projects.compat  # noqa: F401  (compat: serves mmcv._ext)

# isort: split
from projects.compat import mmcv_ops, safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

GOLDENS = osp.join(ROOT, 'tests', 'data', 'mmcv_ops_goldens.pt')
DEMO_DETECTOR = ('configs/faster_rcnn/'
                 'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')
RTOL = 1e-5  # RoIAlign against the goldens, relative
# Detector losses and gradients, torchvision backend vs reference, relative
# to each loss / gradient norm. The reference sums RoIAlign in float64, the
# kernels in float32; the backward pass grows that rounding to at most 1e-5
# on the demo detector, while a wrong op (RoIAlign ignoring `aligned`, NMS
# with the other `offset`) moves the losses by 3e-4 or more and gradients by
# 1e-2 or more.
DETECTOR_RTOL = 1e-4
STEPS = 3


# ---------------------------------------------------------------- NMS cases
def _boxes(gen: torch.Generator, n: int, size: float = 100.,
           grid: bool = False) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * size
    wh = torch.rand(n, 2, generator=gen) * size / 4 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    return boxes.round() if grid else boxes


def nms_cases() -> List[dict]:
    """Inputs for ``mmcv.ops.nms`` / ``batched_nms``: random, tied scores,
    integer grids (IoU exactly at the threshold), offset 1, empty, score
    threshold + max_num, class offsets and the > 10,000-box split path."""
    gen = torch.Generator().manual_seed(0)
    cases = []
    for n, thr, offset, ties, grid in [(300, 0.5, 0, False, False),
                                       (300, 0.3, 1, False, False),
                                       (300, 0.7, 0, True, False),
                                       (400, 0.5, 1, True, True),
                                       (400, 0.5, 0, True, True),
                                       (0, 0.5, 0, False, False)]:
        scores = torch.rand(n, generator=gen)
        if ties:  # few distinct values: order among equals must match
            scores = (scores * 4).floor() / 4
        cases.append(dict(kind='nms', boxes=_boxes(gen, n, grid=grid),
                          scores=scores, iou_threshold=thr, offset=offset,
                          score_threshold=0., max_num=-1))
    cases.append(dict(kind='nms', boxes=_boxes(gen, 500),
                      scores=torch.rand(500, generator=gen),
                      iou_threshold=0.6, offset=0, score_threshold=0.3,
                      max_num=50))
    for n, classes, split in [(600, 10, 10000), (12000, 20, 10000)]:
        scores = (torch.rand(n, generator=gen) * 8).floor() / 8
        cases.append(dict(kind='batched_nms', boxes=_boxes(gen, n, 800),
                          scores=scores,
                          idxs=torch.randint(classes, (n,), generator=gen),
                          nms_cfg=dict(type='nms', iou_threshold=0.5,
                                       split_thr=split, max_num=1000)))
    return cases


# ----------------------------------------------------------- RoIAlign cases
def roi_align_cases() -> List[dict]:
    """RoIs inside, partly outside and fully outside the map, degenerate and
    empty; ``aligned`` True/False, ``sampling_ratio`` 0 and 2, several
    ``spatial_scale``s and output sizes."""
    gen = torch.Generator().manual_seed(1)
    feat = torch.randn(2, 3, 16, 20, generator=gen)
    cases = []
    for scale in (1.0, 0.5, 0.25, 1 / 16.):
        extent = torch.tensor([20., 16.]) / scale
        n = 24
        xy1 = (torch.rand(n, 2, generator=gen) * 1.4 - 0.2) * extent
        wh = torch.rand(n, 2, generator=gen) * extent / 2
        rois = torch.cat([torch.randint(2, (n, 1), generator=gen).float(),
                          xy1, xy1 + wh], dim=1)
        rois[0, 3:] = rois[0, 1:3]  # zero-size RoI
        rois[1, 1:] = torch.cat([-extent, -extent / 2])  # outside the map
        for aligned in (True, False):
            for ratio in (0, 2):
                for out in ((7, 7), (2, 3)):
                    cases.append(dict(input=feat, rois=rois, output_size=out,
                                      spatial_scale=scale,
                                      sampling_ratio=ratio, aligned=aligned))
    cases.append(dict(input=feat, rois=torch.zeros(0, 5), output_size=(7, 7),
                      spatial_scale=0.25, sampling_ratio=0, aligned=True))
    return cases


def run_nms(case: dict) -> torch.Tensor:
    from mmcv.ops import batched_nms, nms
    if case['kind'] == 'nms':
        return nms(case['boxes'], case['scores'], case['iou_threshold'],
                   offset=case['offset'],
                   score_threshold=case['score_threshold'],
                   max_num=case['max_num'])[1]
    return batched_nms(case['boxes'], case['scores'], case['idxs'],
                       copy.deepcopy(case['nms_cfg']))[1]


def run_roi_align(case: dict) -> Dict[str, torch.Tensor]:
    from mmcv.ops import roi_align
    feat = case['input'].clone().requires_grad_(True)
    out = roi_align(feat, case['rois'], case['output_size'],
                    case['spatial_scale'], case['sampling_ratio'], 'avg',
                    case['aligned'])
    gen = torch.Generator().manual_seed(2)
    grad_out = torch.randn(out.shape, generator=gen)
    out.backward(grad_out)
    return dict(output=out.detach(), grad_input=feat.grad)


# ------------------------------------------- from-formula reference (mmcv)
def reference_nms(boxes: torch.Tensor, scores: torch.Tensor,
                  iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """mmcv's CPU NMS (``nms_cpu``) from its formula: boxes in the order of
    torch's descending sort of the scores; a box is dropped when its IoU with
    an earlier kept one exceeds the threshold, widths being
    ``x2 - x1 + offset``. Same float32 operations in the same order, so the
    same decisions."""
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    x1, y1, x2, y2 = boxes[order].unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])
             + offset).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])
             + offset).clamp(min=0)
        inter = w * h
        suppressed[rest] |= inter / (areas[i] + areas[rest] - inter) \
            > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def _sample_axis(start, bin_size, grid, pooled: int, size: int):
    """One axis of mmcv's RoIAlign sampling (``pre_calc_for_bilinear_
    interpolate``), in float32 as mmcv computes it: for each RoI, bin and
    grid point, the low/high pixel, their bilinear weights and whether the
    point is inside [-1, size] (a point outside contributes nothing)."""
    steps = int(grid.max()) if grid.numel() else 0
    bins = torch.arange(pooled, dtype=torch.float32)[None, :, None]
    points = torch.arange(steps, dtype=torch.float32)[None, None, :] + .5
    grid_f = grid.float()[:, None, None]
    pos = (start[:, None, None] + bins * bin_size[:, None, None]
           + points * bin_size[:, None, None] / grid_f)
    on_grid = torch.arange(steps)[None, None, :] < grid[:, None, None]
    inside = (pos >= -1.) & (pos <= size) & on_grid
    pos = pos.clamp(min=0)
    low = pos.long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, size - 1, low)
    high = torch.where(at_edge, size - 1, low + 1)
    pos = torch.where(at_edge, low.float(), pos)
    frac = pos - low
    return low, high, 1. - frac, frac, inside


def _roi_align_matrix(rois: torch.Tensor, shape, pooled_h: int,
                      pooled_w: int, spatial_scale: float,
                      sampling_ratio: int, aligned: bool) -> torch.Tensor:
    """mmcv's RoIAlign (average pooling) as a sparse float64 matrix from the
    flattened feature map (``B*H*W``) to the flattened bins (``R*PH*PW``):
    output = M @ input, grad_input = M.T @ grad_output."""
    batch, _, height, width = shape
    n = len(rois)
    offset = 0.5 if aligned else 0.
    rois = rois.float()
    start_x = rois[:, 1] * spatial_scale - offset
    start_y = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - start_x
    roi_h = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:  # mmcv's legacy mode: at least one pixel
        roi_w, roi_h = roi_w.clamp(min=1.), roi_h.clamp(min=1.)
    bin_w, bin_h = roi_w / pooled_w, roi_h / pooled_h
    if sampling_ratio > 0:
        grid_w = grid_h = torch.full((n,), sampling_ratio, dtype=torch.long)
    else:
        grid_w = torch.ceil(roi_w / pooled_w).long()
        grid_h = torch.ceil(roi_h / pooled_h).long()
    count = (grid_h * grid_w).clamp(min=1).double()
    ylo, yhi, yw_lo, yw_hi, yin = _sample_axis(start_y, bin_h, grid_h,
                                               pooled_h, height)
    xlo, xhi, xw_lo, xw_hi, xin = _sample_axis(start_x, bin_w, grid_w,
                                               pooled_w, width)
    rows = (torch.arange(n)[:, None, None] * pooled_h * pooled_w
            + torch.arange(pooled_h)[None, :, None] * pooled_w
            + torch.arange(pooled_w)[None, None, :])[..., None, None]
    base = rois[:, 0].long()[:, None, None, None, None] * height * width
    # y terms index [R, PH, 1, GH, 1], x terms [R, 1, PW, 1, GW]
    def ys(t):
        return t[:, :, None, :, None]

    def xs(t):
        return t[:, None, :, None, :]

    inside = ys(yin) & xs(xin)
    all_rows, all_cols, all_vals = [], [], []
    for y_idx, x_idx, wy, wx in ((ylo, xlo, yw_lo, xw_lo),
                                 (ylo, xhi, yw_lo, xw_hi),
                                 (yhi, xlo, yw_hi, xw_lo),
                                 (yhi, xhi, yw_hi, xw_hi)):
        # float32 products as mmcv's w1..w4, then divided by the count
        weight = (ys(wy) * xs(wx)).double() / count[:, None, None, None, None]
        cols = base + ys(y_idx) * width + xs(x_idx)
        full = torch.broadcast_tensors(rows, cols, weight, inside)
        keep = full[3]
        all_rows.append(full[0][keep])
        all_cols.append(full[1][keep])
        all_vals.append(full[2][keep])
    return torch.sparse_coo_tensor(
        torch.stack([torch.cat(all_rows), torch.cat(all_cols)]),
        torch.cat(all_vals), (n * pooled_h * pooled_w, batch * height * width),
        check_invariants=True)


def reference_roi_align_forward(input, rois, output, argmax_y, argmax_x,
                                aligned_height, aligned_width, spatial_scale,
                                sampling_ratio, pool_mode, aligned) -> None:
    """``mmcv._ext.roi_align_forward`` (average pooling) from the formula."""
    assert pool_mode == mmcv_ops.MMCV_POOL_AVG
    batch, channels, height, width = input.shape
    matrix = _roi_align_matrix(rois, input.shape, aligned_height,
                               aligned_width, spatial_scale, sampling_ratio,
                               aligned)
    flat = input.detach().permute(0, 2, 3, 1).reshape(-1, channels).double()
    out = torch.sparse.mm(matrix, flat).reshape(
        len(rois), aligned_height, aligned_width, channels)
    output.copy_(out.permute(0, 3, 1, 2))


def reference_roi_align_backward(grad_output, rois, argmax_y, argmax_x,
                                 grad_input, aligned_height, aligned_width,
                                 spatial_scale, sampling_ratio, pool_mode,
                                 aligned) -> None:
    """``mmcv._ext.roi_align_backward`` (average pooling): the transpose of
    the forward's matrix."""
    assert pool_mode == mmcv_ops.MMCV_POOL_AVG
    batch, channels, height, width = grad_input.shape
    matrix = _roi_align_matrix(rois, grad_input.shape, aligned_height,
                               aligned_width, spatial_scale, sampling_ratio,
                               aligned)
    flat = grad_output.permute(0, 2, 3, 1).reshape(-1, channels).double()
    grad = torch.sparse.mm(matrix.t(), flat).reshape(batch, height, width,
                                                     channels)
    grad_input.copy_(grad.permute(0, 3, 1, 2))


def reference_ext() -> types.SimpleNamespace:
    """Stands in for ``mmcv._ext`` with the from-formula ops above."""
    return types.SimpleNamespace(
        nms=reference_nms, roi_align_forward=reference_roi_align_forward,
        roi_align_backward=reference_roi_align_backward)


# ------------------------------------------------- three detector SGD steps
def _demo_detector() -> Tuple[torch.nn.Module, torch.Tensor, list]:
    """The demo Faster R-CNN (seeded init) and a fixed batch of two."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    import projects.detection  # noqa: F401
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, DEMO_DETECTOR))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    gen = torch.Generator().manual_seed(3)
    h, w = 128, 160
    samples = []
    for i in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        pad_shape=(h, w), batch_input_shape=(
                                            h, w), scale_factor=(1., 1.)))
        boxes = _boxes(gen, 4, 100.) + torch.tensor([8., 8, 8, 8])
        s.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.randint(100, (4,), generator=gen))
        samples.append(s)
    images = torch.randn(2, 3, h, w, generator=gen)
    return model, images, samples


def _loss_and_grads(model, images, samples, ext, seed: int) -> dict:
    """Losses and per-parameter gradient fingerprints (float64 norm and sum)
    of one forward/backward on ``ext``; gradients are left in ``.grad``."""
    model.zero_grad()
    torch.manual_seed(seed)  # the RPN / R-CNN samplers draw from torch's RNG
    with mmcv_ops.use_ext(ext):
        total, log_vars = model.parse_losses(model.loss(images, samples))
        total.backward()
    grads = {n: torch.tensor([p.grad.double().norm(), p.grad.double().sum()])
             for n, p in model.named_parameters() if p.grad is not None}
    return dict(losses={k: v.detach().double().reshape(1)
                        for k, v in log_vars.items()}, grads=grads)


def detector_steps(ext, reference=None,
                   steps: int = STEPS) -> List[Tuple[dict, Optional[dict]]]:
    """``steps`` SGD steps of the demo Faster R-CNN on ``ext``; before each,
    the same model state, batch and sampler seed run on ``reference`` too
    (when given). Returns (ext's, reference's) record per step."""
    model, images, samples = _demo_detector()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                            weight_decay=5e-4)
    records = []
    for step in range(steps):
        want = None
        if reference is not None:
            state = copy.deepcopy(model.state_dict())  # BN statistics too
            want = _loss_and_grads(model, images, samples, reference,
                                   seed=4 + step)
            model.load_state_dict(state)
        got = _loss_and_grads(model, images, samples, ext, seed=4 + step)
        records.append((got, want))
        optim.step()  # on ext's gradients
    return records


def compare_detector(ext, reference, steps: int = STEPS,
                     rtol: float = DETECTOR_RTOL) -> List[str]:
    """Differences between the detector's losses and gradients on ``ext``
    and on ``reference`` from the same state at each step (empty: equal)."""
    problems = []
    for step, (got, want) in enumerate(detector_steps(ext, reference,
                                                      steps)):
        for group in ('losses', 'grads'):
            if set(got[group]) != set(want[group]):
                problems.append(f'detector step {step} {group}: names '
                                f'differ')
            for name, value in want[group].items():
                if name not in got[group]:
                    continue
                err = _close(got[group][name], value, rtol)
                if not math.isfinite(err) or err > rtol:
                    problems.append(f'detector step {step} {group} {name}: '
                                    f'relative error {err:.2e}')
    return problems


# ----------------------------------------------------------- record / check
def compute(ext) -> dict:
    with mmcv_ops.use_ext(ext):
        return dict(
            nms=[(c, run_nms(c)) for c in nms_cases()],
            roi_align=[(c, run_roi_align(c)) for c in roi_align_cases()])


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> float:
    """Largest error relative to the reference's scale (0 if both empty)."""
    if a.numel() == 0 and b.numel() == 0:
        return 0.
    scale = b.abs().max().clamp_min(1e-12)
    return float((a - b).abs().max() / scale)


def compare(goldens: dict, ext) -> List[str]:
    """Differences between ``ext``'s op results and the goldens (empty:
    equal). Runs on the goldens' recorded inputs."""
    problems = []
    with mmcv_ops.use_ext(ext):
        for i, (case, want) in enumerate(goldens['nms']):
            got = run_nms(case)
            if not torch.equal(got, want):
                problems.append(f'nms case {i} ({case["kind"]}): kept '
                                f'{got.tolist()[:10]}... != {want.tolist()[:10]}...')
        for i, (case, want) in enumerate(goldens['roi_align']):
            got = run_roi_align(case)
            for key in ('output', 'grad_input'):
                if got[key].shape != want[key].shape or _close(
                        got[key], want[key], RTOL) > RTOL:
                    problems.append(f'roi_align case {i} {key}: relative '
                                    f'error {_close(got[key], want[key], RTOL):.2e}')
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--record', action='store_true',
                        help='record goldens with compiled mmcv')
    parser.add_argument('--out', default=GOLDENS)
    args = parser.parse_args()
    if args.record:
        import mmcv
        if mmcv_ops.ops_backend() != 'compiled':
            sys.exit('--record needs compiled mmcv 2.1.0 (mmcv._ext); found '
                     f'the {mmcv_ops.ops_backend()} backend')
        import mmcv._ext as ext
        result = compute(ext)
        result['meta'] = dict(torch=str(torch.__version__), mmcv=mmcv.__version__,
                              recorded_with='compiled mmcv._ext (CPU)')
        os.makedirs(osp.dirname(args.out), exist_ok=True)
        torch.save(result, args.out)
        print(f'wrote {args.out} ({osp.getsize(args.out) / 1e6:.2f} MB): '
              f"{len(result['nms'])} nms, {len(result['roi_align'])} "
              'roi_align cases')
        return
    # (goldens recorded before the detector check moved to the reference
    # also hold a 'detector' entry; it is not read)
    goldens = safe_torch_load(args.out)
    problems = []
    for name, ext in (('torchvision backend', mmcv_ops.torchvision_ext()),
                      ('reference', reference_ext())):
        found = compare(goldens, ext)
        print('\n'.join(found) or
              f"{name} matches the goldens ({goldens['meta']})")
        problems += found
    found = compare_detector(mmcv_ops.torchvision_ext(), reference_ext())
    print('\n'.join(found) or f'{STEPS} detector steps: the torchvision '
          f'backend matches the reference within {DETECTOR_RTOL:g}')
    sys.exit(1 if problems or found else 0)


if __name__ == '__main__':
    main()
