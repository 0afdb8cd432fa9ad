#!/usr/bin/env python
"""Export a VICReg (or extracted backbone) checkpoint to torchvision layout.

    python tools/model_converters/mmpretrain_to_torchvision.py \
        work_dirs/vicreg/epoch_230.pth resnet50.pth

Writes a bare state dict with torchvision / official-VICReg keys and no
``fc`` (official ``resnet.py`` loads it strictly; torchvision's
``resnet50()`` with ``strict=False``, missing only ``fc.weight/bias``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import projects  # noqa: E402,F401  (compatibility fixes first)
from projects.vicreg.converters import (  # noqa: E402
    ConversionError, describe, load_file, save_file,
    mmpretrain_to_torchvision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='VICReg / backbone checkpoint')
    parser.add_argument('dst', help='output torchvision state dict')
    parser.add_argument('--depth', type=int, help='ResNet depth (inferred)')
    args = parser.parse_args()
    try:
        state, depth, dropped = mmpretrain_to_torchvision(
            load_file(args.src), args.depth)
    except ConversionError as err:
        sys.exit(f'error: {args.src}: {err}')
    save_file(state, args.dst)
    print(describe(len(state), f'ResNet-{depth}, torchvision layout',
                   args.dst, dropped))


if __name__ == '__main__':
    main()
