"""Random parameters of VICReg's views for a whole batch, on the device.

The same distributions as torchvision's ``RandomResizedCrop``,
``RandomHorizontalFlip``, ``RandomApply(ColorJitter)``, ``RandomGrayscale``
and the official ``GaussianBlur`` / ``Solarization``; defaults are the
official values (:mod:`projects.vicreg.views`). Per-sample choices are
boolean masks: nothing is read back to the host.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch

from ...views import (BLUR_SIGMA, CROP_RATIO, CROP_SCALE, FLIP_PROB, GRAY_PROB,
                      JITTER, JITTER_PROB)


def _rand(shape, device, generator) -> torch.Tensor:
    return torch.rand(shape, device=device, generator=generator)


def sample_crop_params(n: int,
                       height: int,
                       width: int,
                       scale: Tuple[float, float] = CROP_SCALE,
                       ratio: Tuple[float, float] = CROP_RATIO,
                       device=None,
                       generator: Optional[torch.Generator] = None,
                       attempts: int = 10) -> torch.Tensor:
    """torchvision ``RandomResizedCrop.get_params`` for ``n`` samples.

    Returns:
        Tensor: (n, 4) float tensor of integer-valued ``(i, j, h, w)``
        (top, left, height, width).
    """
    area = float(height * width)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    u = _rand((n, attempts, 4), device, generator)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * u[..., 1])
    # int(round(.)): Python and torch both round half to even.
    w = torch.round(torch.sqrt(target_area * aspect))
    h = torch.round(torch.sqrt(target_area / aspect))
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    # randint(0, H - h + 1) == floor(U * (H - h + 1))
    i = torch.floor(u[..., 2] * (height - h + 1)).clamp_(min=0)
    j = torch.floor(u[..., 3] * (width - w + 1)).clamp_(min=0)
    first = torch.argmax(valid.to(torch.uint8), dim=1, keepdim=True)
    pick = lambda t: t.gather(1, first).squeeze(1)  # noqa: E731
    ci, cj, ch, cw = pick(i), pick(j), pick(h), pick(w)
    # Fallback: centre crop clamped to the ratio range.
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = height, int(round(height * max(ratio)))
    else:
        fw, fh = width, height
    fi, fj = (height - fh) // 2, (width - fw) // 2
    ok = valid.any(dim=1)
    # Python-scalar fallbacks: a tensor made from a list on the device
    # would be a blocking host->device copy
    return torch.stack([
        torch.where(ok, t, float(f))
        for t, f in ((ci, fi), (cj, fj), (ch, fh), (cw, fw))
    ], dim=1)


def sample_view_params(n: int,
                       height: int,
                       width: int,
                       blur_prob: float,
                       solarize_prob: float,
                       flip_prob: float = FLIP_PROB,
                       jitter_prob: float = JITTER_PROB,
                       jitter: Sequence[float] = JITTER,
                       gray_prob: float = GRAY_PROB,
                       sigma: Tuple[float, float] = BLUR_SIGMA,
                       scale: Tuple[float, float] = CROP_SCALE,
                       ratio: Tuple[float, float] = CROP_RATIO,
                       device=None,
                       generator: Optional[torch.Generator] = None
                       ) -> Dict[str, torch.Tensor]:
    """All random parameters of one view for ``n`` samples (on device)."""
    crop = sample_crop_params(n, height, width, scale, ratio, device,
                              generator)
    u = _rand((n, 13), device, generator)
    b, c, s, hue = jitter
    factors = torch.stack([
        1 - b + 2 * b * u[:, 0],
        1 - c + 2 * c * u[:, 1],
        1 - s + 2 * s * u[:, 2],
        -hue + 2 * hue * u[:, 3],
    ], dim=1)
    # randperm(4) per sample: argsort of iid uniforms is a uniform order.
    order = torch.argsort(u[:, 4:8], dim=1)
    return dict(
        crop=crop,
        flip=u[:, 8] < flip_prob,
        jitter=u[:, 9] < jitter_prob,
        factors=factors,
        order=order,
        gray=u[:, 10] < gray_prob,
        blur=u[:, 11] < blur_prob,
        sigma=sigma[0] + (sigma[1] - sigma[0]) * _rand(
            (n, ), device, generator),
        solarize=u[:, 12] < solarize_prob,
    )
