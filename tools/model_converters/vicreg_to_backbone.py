#!/usr/bin/env python
"""Extract the backbone of a VICReg checkpoint as a tensors-only file.

    python tools/model_converters/vicreg_to_backbone.py \
        work_dirs/vicreg/epoch_230.pth vicreg_r50_backbone.pth

The output is ``{'state_dict': {'backbone.*': tensor}, 'meta': {...}}`` and
loads in MMDetection with ``init_cfg=dict(type='Pretrained',
checkpoint='vicreg_r50_backbone.pth', prefix='backbone.')``. Every tensor is
checked against a fresh ResNet of the inferred (or given) depth.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import projects  # noqa: E402,F401  (compatibility fixes first)
from projects.vicreg.converters import (  # noqa: E402
    ConversionError, describe, load_file, save_file, extract_backbone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='VICReg checkpoint (mmengine .pth)')
    parser.add_argument('dst', help='output backbone file')
    parser.add_argument('--depth', type=int, help='ResNet depth (inferred)')
    args = parser.parse_args()
    try:
        state, depth, dropped = extract_backbone(
            load_file(args.src), args.depth)
    except ConversionError as err:
        sys.exit(f'error: {args.src}: {err}')
    meta = dict(source=args.src, arch=f'ResNet-{depth}', layout='mmpretrain')
    save_file(dict(state_dict=state, meta=meta), args.dst)
    print(describe(len(state), f'ResNet-{depth}', args.dst, dropped))


if __name__ == '__main__':
    main()
