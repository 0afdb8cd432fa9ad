#!/usr/bin/env python
"""Import an official-VICReg / torchvision ResNet into this project's layout.

    python tools/model_converters/torchvision_to_mmpretrain.py \
        resnet50.pth vicreg_r50_official_backbone.pth

Accepts the official ``resnet50.pth`` (bare backbone), a torchvision
``resnetXX().state_dict()`` (``fc.*`` dropped) or an official training
checkpoint (``model`` -> ``module.backbone.*``; projector dropped). Writes
``{'state_dict': {'backbone.*': tensor}}``, usable as a VICReg ``load_from``
or by MMDetection with ``prefix='backbone.'``. Fails listing every missing,
unexpected or mis-shaped tensor against a fresh ResNet of that depth.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import projects  # noqa: E402,F401  (compatibility fixes first)
from projects.vicreg.converters import (  # noqa: E402
    ConversionError, describe, load_file, save_file,
    torchvision_to_mmpretrain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='torchvision / official VICReg file')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--depth', type=int, help='ResNet depth (inferred)')
    args = parser.parse_args()
    try:
        state, depth, dropped = torchvision_to_mmpretrain(
            load_file(args.src), args.depth)
    except ConversionError as err:
        sys.exit(f'error: {args.src}: {err}')
    meta = dict(source=args.src, arch=f'ResNet-{depth}', layout='mmpretrain')
    save_file(dict(state_dict=state, meta=meta), args.dst)
    print(describe(len(state), f'ResNet-{depth}', args.dst, dropped))


if __name__ == '__main__':
    main()
