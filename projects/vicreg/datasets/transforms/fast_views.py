"""The official VICReg colour / grey / blur augmentations on uint8 with cv2.

The official ``augmentations.py`` runs ``ColorJitter``, ``RandomGrayscale``
and ``GaussianBlur`` in PIL; mmpretrain's equivalents (``ColorJitter``,
``RandomGrayscale``, ``GaussianBlur`` in ``imagenet_bs32_byol.py``) convert to
float and are slower still (per-op costs: docs/performance.md). The
transforms below keep the
official random parameters and PIL's uint8 arithmetic but use cv2's
vectorised kernels and 256-entry lookup tables:

=====================  ====================================================
official (PIL)         here (uint8 in, uint8 out, image BGR or RGB)
=====================  ====================================================
ColorJitter            torchvision ``get_params``: factors b, c ~
(0.4, 0.4, 0.2, 0.1)   U(0.6, 1.4), s ~ U(0.8, 1.2), h ~ U(-0.1, 0.1) in a
                       uniformly random order (``randperm(4)``). Brightness
                       and contrast: PIL's ``Image.blend`` with black / the
                       rounded grey mean, truncated to uint8, as one lookup
                       table each (bit-identical). Saturation: blend with
                       the grey image (within 1 level). Hue: PIL's 8-bit HSV
                       (H, S truncated to bytes) rebuilt on cv2's float HSV,
                       ``int(h * 255)`` added to H (< 1% of pixels differ).
RandomGrayscale 0.2    ITU-R 601-2 luma to 3 channels (``convert('L')``,
                       within 1 level).
GaussianBlur           sigma ~ U(0.1, 2.0): PIL's ``GaussianBlur(sigma)``
                       filter itself, 3 passes of its extended box per axis
                       with its 24-bit fixed-point weights, edge replication
                       and uint8 rounding per pass, as 1-D ``cv2.filter2D``
                       passes (float32 sums: within 3 levels, mean < 0.2).
=====================  ====================================================

Bounds measured by tests/projects/vicreg/test_perf_fast_views.py against the PIL /
torchvision calls of the official transform.

Randomness is numpy's global RNG, like mmpretrain's transforms (mmengine
seeds it per worker). All three are registered in mmpretrain's
``TRANSFORMS`` and drop into ``MultiView`` view pipelines.
"""
import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from ...views import BLUR_SIGMA


def _check_image(img: np.ndarray, name: str) -> None:
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8
            and img.ndim == 3 and img.shape[2] == 3):
        got = (f'{img.dtype} array of shape {img.shape}' if isinstance(
            img, np.ndarray) else type(img).__name__)
        raise TypeError(
            f'{name} needs results["img"] as a uint8 HxWx3 array (as '
            f'LoadImageFromFile and RandomResizedCrop give); got {got}. '
            f'Put it before any transform that converts to float.')


def _gray(img: np.ndarray, rgb: bool) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)


def _truncating_lut(offset: float, factor: float) -> np.ndarray:
    """PIL ``Image.blend(const, img, f)``: ``(uint8)(c + f * (x - c))``
    clipped, as a 256-entry table (float32 arithmetic like PIL's)."""
    x = np.arange(256, dtype=np.float32)
    out = np.float32(offset) + np.float32(factor) * (x - np.float32(offset))
    return np.clip(np.floor(out), 0, 255).astype(np.uint8)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """``ImageEnhance.Brightness(img).enhance(factor)`` on uint8."""
    return cv2.LUT(img, _truncating_lut(0.0, factor))


def adjust_contrast(img: np.ndarray, factor: float,
                    rgb: bool = False) -> np.ndarray:
    """``ImageEnhance.Contrast``: blend with the grey mean, rounded to an
    integer (``int(mean + 0.5)``) as PIL does."""
    mean = int(cv2.mean(_gray(img, rgb))[0] + 0.5)
    return cv2.LUT(img, _truncating_lut(float(mean), factor))


def adjust_saturation(img: np.ndarray, factor: float,
                      rgb: bool = False) -> np.ndarray:
    """``ImageEnhance.Color``: blend with the grey image. cv2 rounds where
    PIL truncates; the -0.5 offset turns its rounding into truncation
    (+1e-3 so exact integers, e.g. grey pixels, stay put)."""
    gray = cv2.cvtColor(_gray(img, rgb), cv2.COLOR_GRAY2BGR)
    return cv2.addWeighted(img, factor, gray, 1.0 - factor, -0.5 + 1e-3)


def adjust_hue(img: np.ndarray, hue: float, rgb: bool = False) -> np.ndarray:
    """torchvision's PIL ``adjust_hue``: ``img.convert('HSV')``, H plus
    ``int(hue * 255)`` wrapping around, back to RGB.

    PIL's 8-bit HSV is reproduced on cv2's float HSV: H and S truncated to
    ``int(h * 255)`` / ``int(s * 255)`` (Convert.c ``rgb2hsv``), V the max;
    back-conversion rounds p, q, t as PIL's ``hsv2rgb``. cv2's own 8-bit
    HSV quantises differently (mean 0.9 levels off PIL here, max 13).
    """
    if not -0.5 <= hue <= 0.5:
        raise ValueError(f'hue must be in [-0.5, 0.5], got {hue}')
    to_hsv, to_img = ((cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB) if rgb else
                      (cv2.COLOR_BGR2HSV, cv2.COLOR_HSV2BGR))
    h, s, v = cv2.split(cv2.cvtColor(img.astype(np.float32), to_hsv))
    # h in degrees [0, 360): PIL's H byte is int(h / 360 * 255)
    h_byte = np.floor(h * np.float32(255 / 360))
    h_byte += int(hue * 255) % 256
    h_byte[h_byte >= 256] -= 256
    h = h_byte * np.float32(360 / 255)
    s = np.floor(s * np.float32(255)) * np.float32(1 / 255)
    out = cv2.cvtColor(cv2.merge((h, s, v)), to_img)
    out += 0.5  # C round() on non-negative values
    return out.astype(np.uint8)  # truncation = floor for out >= 0


def pil_box_radius(sigma: float, passes: int = 3) -> np.float32:
    """Box radius of each of PIL's ``passes`` extended box blurs for
    ``GaussianBlur(sigma)`` (BoxBlur.c ``_gaussian_blur_radius``, in its
    float32): the passes' total variance is sigma^2."""
    f32 = np.float32
    sigma2 = f32(sigma) * f32(sigma) / f32(passes)
    big_l = f32(math.sqrt(12.0 * float(sigma2) + 1.0))
    l_int = f32(math.floor((float(big_l) - 1.0) / 2.0))
    a = f32((2 * l_int + 1) * (l_int * (l_int + 1) - 3 * sigma2))
    a = f32(a / (6 * (sigma2 - (l_int + 1) * (l_int + 1))))
    return f32(l_int + a)


def pil_box_kernel(radius: float) -> np.ndarray:
    """1-D kernel of one PIL extended box pass with PIL's 24-bit fixed-point
    weights: ``ww = 2^24 // (2r + 1)`` on the 2 floor(r) + 1 inner taps and
    ``fw = (2^24 - (2 floor(r) + 1) ww) // 2`` on the two edge taps (exact
    in float32)."""
    l_int = int(radius)
    ww = int(np.float32(1 << 24) / (np.float32(radius) * 2 + 1))
    fw = ((1 << 24) - (2 * l_int + 1) * ww) // 2
    taps = [fw] + [ww] * (2 * l_int + 1) + [fw]
    return np.array(taps, np.float64).astype(np.float32) / np.float32(1 << 24)


def pil_gaussian_blur(img: np.ndarray, sigma: float,
                      passes: int = 3) -> np.ndarray:
    """``img.filter(ImageFilter.GaussianBlur(sigma))`` on a uint8 array:
    ``passes`` horizontal then ``passes`` vertical box passes, each rounded
    to uint8, edges replicated. PIL rounds ``(sum + 2^23) >> 24`` with
    floored weights, so exact halves go down; cv2 rounds half to even:
    ``delta`` -1e-3 moves halves below the tie."""
    if sigma <= 0:
        return img
    kernel = pil_box_kernel(pil_box_radius(sigma, passes))[None]
    for k in (kernel, kernel.T):
        for _ in range(passes):
            img = cv2.filter2D(img, -1, k, delta=-1e-3,
                               borderType=cv2.BORDER_REPLICATE)
    return img


@TRANSFORMS.register_module()
class FastColorJitter(BaseTransform):
    """torchvision ``ColorJitter`` (PIL semantics) on uint8 with cv2.

    Args:
        brightness, contrast, saturation (float): factor drawn from
            U(max(0, 1 - v), 1 + v); 0 disables the op.
        hue (float): shift drawn from U(-v, v), v in [0, 0.5].
        rgb (bool): channel order of ``results['img']``; False for mmcv's
            BGR (the default of ``LoadImageFromFile``).
    """

    def __init__(self,
                 brightness: float = 0.,
                 contrast: float = 0.,
                 saturation: float = 0.,
                 hue: float = 0.,
                 rgb: bool = False) -> None:
        for name, value in (('brightness', brightness),
                            ('contrast', contrast),
                            ('saturation', saturation)):
            if value < 0:
                raise ValueError(f'FastColorJitter: {name} must be >= 0, '
                                 f'got {value}')
        if not 0 <= hue <= 0.5:
            raise ValueError(f'FastColorJitter: hue must be in [0, 0.5], '
                             f'got {hue}')
        self.ranges = [(max(0., 1 - v), 1 + v) if v > 0 else None
                       for v in (brightness, contrast, saturation)]
        self.ranges.append((-hue, hue) if hue > 0 else None)
        self.rgb = rgb

    def get_params(self) -> Tuple[np.ndarray, list]:
        """torchvision's draw: an op order, then one factor per enabled op
        (in brightness, contrast, saturation, hue order)."""
        order = np.random.permutation(4)
        factors = [None if r is None else float(np.random.uniform(*r))
                   for r in self.ranges]
        return order, factors

    def transform(self, results: dict) -> dict:
        img = results['img']
        _check_image(img, type(self).__name__)
        order, factors = self.get_params()
        for op in order:
            f = factors[op]
            if f is None:
                continue
            if op == 0:
                img = adjust_brightness(img, f)
            elif op == 1:
                img = adjust_contrast(img, f, self.rgb)
            elif op == 2:
                img = adjust_saturation(img, f, self.rgb)
            else:
                img = adjust_hue(img, f, self.rgb)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ranges={self.ranges}, rgb={self.rgb})'


@TRANSFORMS.register_module()
class FastRandomGrayscale(BaseTransform):
    """torchvision ``RandomGrayscale(p)``: with probability ``prob`` the
    image becomes its ITU-R 601-2 luma on all 3 channels."""

    def __init__(self, prob: float = 0.1, rgb: bool = False) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'FastRandomGrayscale: prob must be in [0, 1], '
                             f'got {prob}')
        self.prob = prob
        self.rgb = rgb

    def transform(self, results: dict) -> dict:
        if np.random.rand() < self.prob:
            img = results['img']
            _check_image(img, type(self).__name__)
            results['img'] = cv2.cvtColor(
                _gray(img, self.rgb), cv2.COLOR_GRAY2BGR)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class FastGaussianBlur(BaseTransform):
    """The official ``GaussianBlur(p)``: with probability ``prob`` apply
    PIL's ``ImageFilter.GaussianBlur(sigma)``, sigma ~ U(*sigma)."""

    def __init__(self,
                 sigma: Sequence[float] = BLUR_SIGMA,
                 prob: float = 0.5) -> None:
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f'FastGaussianBlur: sigma must be (min, max) '
                             f'with 0 < min <= max, got {sigma}')
        if not 0 <= prob <= 1:
            raise ValueError(f'FastGaussianBlur: prob must be in [0, 1], '
                             f'got {prob}')
        self.sigma = tuple(float(s) for s in sigma)
        self.prob = prob

    def get_sigma(self) -> Optional[float]:
        # the official order: one draw for "apply?", one for sigma
        if np.random.rand() < self.prob:
            return float(np.random.rand() * (self.sigma[1] - self.sigma[0]) +
                         self.sigma[0])
        return None

    def transform(self, results: dict) -> dict:
        sigma = self.get_sigma()
        if sigma is not None:
            _check_image(results['img'], type(self).__name__)
            results['img'] = pil_gaussian_blur(results['img'], sigma)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sigma={self.sigma}, '
                f'prob={self.prob})')
