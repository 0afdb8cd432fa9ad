# Small CPU demo baseline: the ResNet-18 demo recipe from a random-init
# backbone (same budget as the VICReg-initialised demo).
_base_ = './faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py'

model = dict(backbone=dict(init_cfg=None))
