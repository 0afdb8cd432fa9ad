#!/usr/bin/env python
"""Compiled mmcv ops vs their torchvision backend in one process, on a device.

Needs compiled mmcv installed (the runtime then uses it). Runs the golden
cases of ``tools/misc/mmcv_ops_goldens.py`` on ``--device`` with both
backends: NMS indices must be identical; RoIAlign forward/backward in fp32
within 1e-5 relative and, on CUDA, under fp16/bf16 autocast within the
given ``--half-rtol`` (the two libraries round half precision differently:
torchvision's autocast computes in fp32 and casts back). Prints one JSON line
per group and exits 1 on any mismatch. On the GPU machine:
tools/misc/gpu_check_mmcv_ops.sh.
"""
import argparse
import json
import sys

import torch

import projects.compat  # noqa: F401

# isort: split
import mmcv_ops_goldens as goldens

from projects.compat import mmcv_ops


def to(case: dict, device: str) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v
            for k, v in case.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--half-rtol', type=float, default=1e-2)
    args = parser.parse_args()
    if mmcv_ops.ops_backend() != 'compiled':
        sys.exit('needs compiled mmcv (mmcv._ext) installed')
    import mmcv._ext as compiled
    tv = mmcv_ops.torchvision_ext()
    failed = False

    def report(group: str, worst: float, limit: float, n: int) -> None:
        nonlocal failed
        ok = worst <= limit
        failed |= not ok
        print(json.dumps(dict(check='mmcv_ops_backends', group=group,
                              device=args.device, cases=n,
                              max_rel_err=worst, limit=limit, ok=ok)),
              flush=True)

    nms_cases = [to(c, args.device) for c in goldens.nms_cases()]
    mismatched = 0
    for case in nms_cases:
        with mmcv_ops.use_ext(compiled):
            want = goldens.run_nms(case)
        with mmcv_ops.use_ext(tv):
            got = goldens.run_nms(case)
        mismatched += not torch.equal(want, got)
    report('nms_identical_indices', float(mismatched), 0., len(nms_cases))

    dtypes = [None] + ([torch.float16, torch.bfloat16]
                       if args.device.startswith('cuda') else [])
    for dtype in dtypes:
        worst = 0.
        cases = [to(c, args.device) for c in goldens.roi_align_cases()]
        for case in cases:
            results = []
            for ext in (compiled, tv):
                with mmcv_ops.use_ext(ext), torch.autocast(
                        args.device.split(':')[0], dtype=dtype or torch.float32,
                        enabled=dtype is not None):
                    results.append(goldens.run_roi_align(case))
            for key in ('output', 'grad_input'):
                worst = max(worst, goldens._close(
                    results[1][key].float(), results[0][key].float(), 0.))
        name = 'fp32' if dtype is None else str(dtype).split('.')[-1]
        report(f'roi_align_{name}', worst,
               goldens.RTOL if dtype is None else args.half_rtol, len(cases))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
