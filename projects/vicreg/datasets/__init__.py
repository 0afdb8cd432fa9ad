from .transforms import FastColorJitter, FastGaussianBlur, FastRandomGrayscale
from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = [
    'UnlabeledImageFolder', 'FastColorJitter', 'FastRandomGrayscale',
    'FastGaussianBlur'
]
