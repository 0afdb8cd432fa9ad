"""``augmentations.py`` ``TrainTransform`` of the official VICReg code."""
from typing import Callable, Tuple

import numpy as np
import torch


def official_train_transform(
        size: int = 224) -> Callable[[object], Tuple[torch.Tensor, ...]]:
    """The official two-view ``TrainTransform`` on a PIL RGB image.

    At ``size`` 224 it is the official transform verbatim; at other crop
    sizes the blur sigma range scales with the crop (as our demo config
    does), everything else is unchanged. Returns ``img -> (view1, view2)``,
    normalised float tensors.
    """
    from PIL import ImageFilter, ImageOps
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode
    k = size / 224

    class GaussianBlur:

        def __init__(self, p):
            self.p = p

        def __call__(self, img):
            if np.random.rand() < self.p:
                sigma = (np.random.rand() * 1.9 + 0.1) * k
                return img.filter(ImageFilter.GaussianBlur(sigma))
            return img

    class Solarization:

        def __init__(self, p):
            self.p = p

        def __call__(self, img):
            if np.random.rand() < self.p:
                return ImageOps.solarize(img)
            return img

    def view(blur_p, sol_p):
        return transforms.Compose([
            transforms.RandomResizedCrop(
                size, interpolation=InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.RandomApply([
                transforms.ColorJitter(
                    brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
            ], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            GaussianBlur(p=blur_p),
            Solarization(p=sol_p),
            transforms.ToTensor(),
            transforms.Normalize(
                mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])

    t1, t2 = view(1.0, 0.0), view(0.1, 0.2)
    return lambda img: (t1(img), t2(img))
