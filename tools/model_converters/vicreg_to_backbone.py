#!/usr/bin/env python
"""Extract the backbone of a VICReg checkpoint as a tensors-only file.

    python tools/model_converters/vicreg_to_backbone.py \
        work_dirs/vicreg/epoch_230.pth vicreg_r50_backbone.pth

The output is ``{'state_dict': {'backbone.*': tensor}, 'meta': {...}}`` and
loads in MMDetection with ``init_cfg=dict(type='Pretrained',
checkpoint='vicreg_r50_backbone.pth', prefix='backbone.')``. Every tensor is
checked against a fresh ResNet of the inferred (or given) depth.
"""

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split
from projects.vicreg.converters import converter_main, extract_backbone

if __name__ == '__main__':
    converter_main(
        __doc__.splitlines()[0], extract_backbone,
        src_help='VICReg checkpoint (mmengine .pth)',
        dst_help='output backbone file')
