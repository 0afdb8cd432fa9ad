#!/usr/bin/env python
"""Export a VICReg (or extracted backbone) checkpoint to torchvision layout.

    python tools/model_converters/mmpretrain_to_torchvision.py \
        work_dirs/vicreg/epoch_230.pth resnet50.pth

Writes a bare state dict with torchvision / official-VICReg keys and no
``fc`` (official ``resnet.py`` loads it strictly; torchvision's
``resnet50()`` with ``strict=False``, missing only ``fc.weight/bias``).
"""

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split
from projects.vicreg.converters import (converter_main,
                                        mmpretrain_to_torchvision)

if __name__ == '__main__':
    converter_main(
        __doc__.splitlines()[0], mmpretrain_to_torchvision,
        src_help='VICReg / backbone checkpoint',
        dst_help='output torchvision state dict',
        torchvision_layout=True)
