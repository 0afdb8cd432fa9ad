#!/usr/bin/env python
"""Golden outputs of mmcv's compiled ops, and the check of the torchvision
backend (``projects/compat/mmcv_ops.py``) against them.

``--record`` (needs compiled mmcv 2.1.0, e.g. ``PYTHONPATH=/path/to/compiled``)
runs every case below on ``mmcv._ext`` and writes inputs and outputs to
``tests/data/mmcv_ops_goldens.pt``; ``--check`` (the default) runs the same
cases on the torchvision backend and compares: NMS indices identical (order
included), RoIAlign forward/backward within ``RTOL``; then three SGD steps of
the demo Faster R-CNN give the recorded losses and gradients.
tests/projects/compat/test_mmcv_ops.py runs the check in CI.
"""
import argparse
import copy
import math
import os
import os.path as osp
import sys
from typing import Dict, List

import torch

import projects.compat  # noqa: F401  (compat: serves mmcv._ext)

# isort: split
from projects.compat import mmcv_ops, safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

GOLDENS = osp.join(ROOT, 'tests', 'data', 'mmcv_ops_goldens.pt')
DEMO_DETECTOR = ('configs/faster_rcnn/'
                 'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')
RTOL = 1e-5  # RoIAlign and detector losses/gradients, relative
STEPS = 3
# Conv/GEMM reduction order depends on the thread count (measured: 3.8e-5
# between 1 and 2 threads); record and check the detector steps with the same.
DETECTOR_THREADS = 2


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


# ------------------------------------------------- three detector SGD steps
def detector_steps(steps: int = STEPS) -> List[dict]:
    """Losses and per-parameter gradient fingerprints (float64 norm and sum)
    of ``steps`` SGD steps of the demo Faster R-CNN on a fixed batch."""
    from mmengine.registry import init_default_scope

    import projects.detection  # noqa: F401
    init_default_scope('mmdet')
    threads = torch.get_num_threads()
    torch.set_num_threads(DETECTOR_THREADS)
    try:
        return _detector_steps(steps)
    finally:
        torch.set_num_threads(threads)


def _detector_steps(steps: int) -> List[dict]:
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.structures import InstanceData
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
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                            weight_decay=5e-4)
    torch.manual_seed(4)  # the RPN / R-CNN samplers draw from torch's RNG
    records = []
    for _ in range(steps):
        optim.zero_grad()
        total, log_vars = model.parse_losses(model.loss(images, samples))
        total.backward()
        grads = {n: torch.tensor([p.grad.double().norm(), p.grad.double().sum()])
                 for n, p in model.named_parameters() if p.grad is not None}
        records.append(dict(
            losses={k: v.detach().double().reshape(1)
                    for k, v in log_vars.items()}, grads=grads))
        optim.step()
    return records


# ----------------------------------------------------------- record / check
def compute(ext, detector: bool = True) -> dict:
    with mmcv_ops.use_ext(ext):
        result = dict(
            nms=[(c, run_nms(c)) for c in nms_cases()],
            roi_align=[(c, run_roi_align(c)) for c in roi_align_cases()])
        if detector:
            result['detector'] = detector_steps()
    return result


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> float:
    """Largest error relative to the reference's scale (0 if both empty)."""
    if a.numel() == 0 and b.numel() == 0:
        return 0.
    scale = b.abs().max().clamp_min(1e-12)
    return float((a - b).abs().max() / scale)


def compare(goldens: dict, ext, detector: bool = True) -> List[str]:
    """Differences between ``ext``'s results and the goldens (empty: equal).
    Runs on the goldens' recorded inputs."""
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
        if detector:
            got_steps = detector_steps(len(goldens['detector']))
            for step, (got, want) in enumerate(zip(got_steps,
                                                   goldens['detector'])):
                for group in ('losses', 'grads'):
                    for name, value in want[group].items():
                        err = _close(got[group][name], value, RTOL)
                        if not math.isfinite(err) or err > RTOL:
                            problems.append(f'detector step {step} {group} '
                                            f'{name}: relative error {err:.2e}')
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
              f"roi_align cases, {len(result['detector'])} detector steps")
        return
    goldens = safe_torch_load(args.out)
    problems = compare(goldens, mmcv_ops.torchvision_ext())
    print('\n'.join(problems) or
          f"torchvision backend matches the goldens ({goldens['meta']})")
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
