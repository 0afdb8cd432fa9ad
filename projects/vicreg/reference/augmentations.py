"""``augmentations.py`` ``TrainTransform`` of the official VICReg code.

The official values are those of :mod:`projects.vicreg.views` (shared with
the batched views); the ops here are the official PIL / torchvision ones.
"""
from typing import Callable, Tuple

import numpy as np
import torch

from ..views import (BLUR_SIGMA, CROP_SIZE, FLIP_PROB, GRAY_PROB,
                     IMAGENET_MEAN, IMAGENET_STD, JITTER, JITTER_PROB, VIEW1,
                     VIEW2)


def official_train_transform(
        size: int = CROP_SIZE) -> Callable[[object], Tuple[torch.Tensor, ...]]:
    """The official two-view ``TrainTransform`` on a PIL RGB image.

    At ``size`` 224 it is the official transform verbatim; at other crop
    sizes the blur sigma range scales with the crop (as our demo config
    does), everything else is unchanged. Returns ``img -> (view1, view2)``,
    normalised float tensors.
    """
    from PIL import ImageFilter, ImageOps
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode
    k = size / CROP_SIZE

    class GaussianBlur:

        def __init__(self, p):
            self.p = p

        def __call__(self, img):
            if np.random.rand() < self.p:
                lo, hi = BLUR_SIGMA
                sigma = (np.random.rand() * (hi - lo) + lo) * k
                return img.filter(ImageFilter.GaussianBlur(sigma))
            return img

    class Solarization:

        def __init__(self, p):
            self.p = p

        def __call__(self, img):
            if np.random.rand() < self.p:
                return ImageOps.solarize(img)
            return img

    def view(blur_prob, solarize_prob):
        return transforms.Compose([
            transforms.RandomResizedCrop(
                size, interpolation=InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(p=FLIP_PROB),
            transforms.RandomApply([transforms.ColorJitter(*JITTER)],
                                   p=JITTER_PROB),
            transforms.RandomGrayscale(p=GRAY_PROB),
            GaussianBlur(p=blur_prob),
            Solarization(p=solarize_prob),
            transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ])

    t1, t2 = view(**VIEW1), view(**VIEW2)
    return lambda img: (t1(img), t2(img))
