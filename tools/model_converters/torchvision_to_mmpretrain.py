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

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split
from projects.vicreg.converters import (converter_main,
                                        torchvision_to_mmpretrain)

if __name__ == '__main__':
    converter_main(
        __doc__.splitlines()[0], torchvision_to_mmpretrain,
        src_help='torchvision / official VICReg file',
        dst_help='output checkpoint')
