# Ablation: initialise from a torchvision-layout backbone file, e.g. the
# official VICReg ResNet-50 (https://dl.fbaipublicfiles.com/vicreg/
# resnet50.pth) or torchvision's resnet50().state_dict(). mmdet's ResNet keys
# equal torchvision's (conv1, bn1, layer1.0.conv1...), so no prefix; a
# classifier head (fc.*) in the file is ignored by the check hook.
_base_ = './faster-rcnn_r50-vicreg-pre_fpn_4xb2-70e_competition.py'

pretrained_ckpt = 'checkpoints/vicreg_resnet50_official.pth'
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=pretrained_ckpt, prefix=None)))
