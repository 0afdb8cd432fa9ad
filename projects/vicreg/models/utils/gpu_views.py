"""VICReg's two augmented views computed on batched tensors on the device.

The official ``augmentations.py`` (and mmpretrain's
``imagenet_bs32_byol.py`` views) run per image in PIL on CPU workers, so a
fast GPU needs many cores per device to be fed (docs/performance.md). Here
the workers only decode and
pack uint8 (``LoadImageFromFile`` + ``PackInputs``) and this module draws
per-sample random parameters from the *same* distributions as the official
transform and applies the ops to the whole batch on the GPU:

===================  ========================================================
official (PIL)       here (batched tensors, float32 in [0, 1])
===================  ========================================================
RandomResizedCrop    torchvision's ``get_params`` (scale U(0.08, 1) of the
224, bicubic         area, log-uniform ratio (3/4, 4/3), 10 tries, then the
                     centre-crop fallback), vectorised over the 10 tries.
                     Resampling: PIL's bicubic kernel (a = -0.5) and support
                     (widened by the scale when downscaling, i.e. PIL's
                     antialias), crop borders treated as image borders as
                     after ``img.crop()``, horizontal pass then vertical,
                     each rounded and clipped to 0..255 like PIL's uint8
                     passes; done as two batched matmuls with per-sample
                     resampling matrices. Matches PIL within 1 level
                     (tests/projects/vicreg/test_perf_gpu_views.py); PIL's fixed-point
                     weights are the only difference.
HorizontalFlip 0.5   reversed rows of the horizontal resampling matrix
                     (free).
ColorJitter          per sample: applied with p = 0.8; factors
(0.4, 0.4, 0.2,      b, c ~ U(0.6, 1.4), s ~ U(0.8, 1.2), h ~ U(-0.1, 0.1)
0.1), p 0.8          and a uniformly random order of the four ops per sample
                     (torchvision's ``randperm(4)``). Ops are torchvision's
                     tensor ops (``_blend`` with black / grey mean / grey
                     image, RGB->HSV->RGB hue shift) in float: PIL rounds to
                     uint8 after each op, so results differ by <= ~1 level.
Grayscale p 0.2      ITU-R 601-2 luma (0.2989, 0.587, 0.114) on 3 channels.
GaussianBlur         sigma ~ U(0.1, 2.0) per sample. ``blur='pil'``
p 1.0 / 0.1          (default): exactly PIL's ``GaussianBlur(radius=sigma)``
                     filter, three passes of the extended box blur per axis
                     with edge replication (its variance is sigma^2; PIL
                     rounds per pass). ``blur='gaussian'``: a true Gaussian,
                     kernel 23 with reflect padding, as torchvision's
                     ``GaussianBlur(23)`` (BYOL).
Solarize p 0 / 0.2   ``x >= 128/255 -> 1 - x`` (``ImageOps.solarize``).
ToTensor+Normalize   ImageNet mean/std.
===================  ========================================================

Randomness comes from torch's RNG on the batch's device (seeded by
mmengine's ``randomness.seed`` through ``torch.manual_seed``), or from an
explicit ``torch.Generator``. No step synchronises with the host (no
``.item()``, no ``nonzero``): per-sample choices are ``torch.where`` masks.

``ChannelsLastHook`` (``projects/engine/hooks``) converts the model to NHWC.

Modules: :mod:`.gpu_view_params` draws the parameters, :mod:`.gpu_view_ops`
applies them; this one makes the two views (:func:`vicreg_views`) and holds
``VICRegGPUViewsPreprocessor`` (registered in mmpretrain's ``MODELS``), a
``data_preprocessor`` taking the uint8 batch from the loader and returning
the two views, computed in fp32 with autocast disabled (mmengine runs the
preprocessor inside AMP's autocast context); see
``configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled-gpuviews.py``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS

from ...views import (BLUR_SIGMA, CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD,
                      VIEW1, VIEW2)
# The ops and the parameter sampling, public here as before the split.
from .gpu_view_ops import (adjust_hue, apply_view, color_jitter, gaussian_blur,
                           gaussian_kernel, grayscale, pil_box_kernel,
                           resample_matrix, resized_crop_flip, solarize)
from .gpu_view_params import sample_crop_params, sample_view_params

__all__ = [
    'IMAGENET_MEAN', 'IMAGENET_STD', 'VIEW1', 'VIEW2', 'sample_crop_params',
    'sample_view_params', 'resample_matrix', 'resized_crop_flip',
    'adjust_hue', 'color_jitter', 'grayscale', 'solarize', 'pil_box_kernel',
    'gaussian_kernel', 'gaussian_blur', 'apply_view', 'vicreg_views',
    'VICRegGPUViewsPreprocessor'
]


def vicreg_views(img: torch.Tensor,
                 size: int = CROP_SIZE,
                 blur: str = 'pil',
                 generator: Optional[torch.Generator] = None,
                 views: Sequence[dict] = (VIEW1, VIEW2),
                 sigma: Tuple[float, float] = BLUR_SIGMA,
                 **kwargs) -> List[torch.Tensor]:
    """The official VICReg views of a uint8 RGB batch (n, 3, H, W)."""
    n, _, H, W = img.shape
    out = []
    for view in views:
        params = sample_view_params(
            n, H, W, sigma=sigma, device=img.device, generator=generator,
            **view)
        out.append(
            apply_view(img, params, size=size, blur=blur,
                       sigma_max=sigma[1], **kwargs))
    return out


@MODELS.register_module()
class VICRegGPUViewsPreprocessor(BaseDataPreprocessor):
    """``data_preprocessor`` producing VICReg's two views on the device from
    the loader's uint8 batch (pipeline: ``LoadImageFromFile`` +
    ``PackInputs``, all images the same size).

    Args:
        size (int): Output crop size. Defaults to 224.
        to_rgb (bool): The loader gives BGR (mmcv); flip to RGB. Defaults to
            True.
        blur (str): 'pil' (official PIL filter) or 'gaussian' (kernel 23).
        sigma (tuple): Blur sigma range in output pixels. Defaults to
            (0.1, 2.0).
        views (list[dict]): ``blur_prob`` / ``solarize_prob`` (and any other
            :func:`sample_view_params` argument) per view. Defaults to the
            official (1.0, 0.0) and (0.1, 0.2); every default is the official
            value from :mod:`projects.vicreg.views`.
        channels_last (bool): Return channels-last views. Defaults to False.
        seed (int, optional): Own generator seeded with ``seed + rank``
            instead of torch's global RNG (which mmengine seeds).
    """

    def __init__(self,
                 size: int = CROP_SIZE,
                 to_rgb: bool = True,
                 blur: str = 'pil',
                 sigma: Tuple[float, float] = BLUR_SIGMA,
                 views: Sequence[dict] = (VIEW1, VIEW2),
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 channels_last: bool = False,
                 seed: Optional[int] = None,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        self.size = size
        self.to_rgb = to_rgb
        self.blur = blur
        self.sigma = tuple(sigma)
        self.views = [dict(v) for v in views]
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.channels_last = channels_last
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    def _get_generator(self, device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            from mmengine.dist import get_rank
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed + get_rank())
        return self._generator

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if self.to_rgb:
            inputs = inputs.flip(1)
        # mmengine calls the data preprocessor inside optim_context, i.e.
        # under autocast with AMP: the resampling matmuls would run in
        # fp16/bf16 and miss PIL by several levels. The views are data, not
        # model compute: fp32.
        with torch.autocast(inputs.device.type, enabled=False):
            views = vicreg_views(
                inputs,
                size=self.size,
                blur=self.blur,
                generator=self._get_generator(inputs.device),
                views=self.views,
                sigma=self.sigma,
                mean=self.mean,
                std=self.std)
        if self.channels_last:
            views = [
                v.contiguous(memory_format=torch.channels_last)
                for v in views
            ]
        return dict(inputs=views, data_samples=data.get('data_samples'))
