"""The ops of VICReg's views on batched tensors, per-sample parameters.

PIL's bicubic resized crop (+ flip) as batched matmuls, torchvision's colour
jitter / grayscale tensor ops, PIL's or a true Gaussian blur, solarize
(:mod:`.gpu_views` has the table of how each matches the official PIL
transform). Parameters come from :mod:`.gpu_view_params`.
"""
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ...views import BLUR_SIGMA, CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD

_LUMA = (0.2989, 0.587, 0.114)


# ---------------------------------------------------------------------------
# resized crop + flip: PIL bicubic as batched matmuls
# ---------------------------------------------------------------------------
def _pil_bicubic(x: torch.Tensor) -> torch.Tensor:
    a = -0.5
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, 0.))


def resample_matrix(offset: torch.Tensor, length: torch.Tensor,
                    in_size: int, out_size: int) -> torch.Tensor:
    """(n, out_size, in_size) matrices resampling the crop
    ``[offset, offset + length)`` of an axis to ``out_size`` samples exactly
    as PIL's ``crop().resize(BICUBIC)`` (ImagingResample's precompute_coeffs,
    in float)."""
    dev = offset.device
    scale = (length / out_size)[:, None, None]  # (n, 1, 1)
    fscale = scale.clamp(min=1.0)
    centre = (torch.arange(out_size, device=dev, dtype=torch.float32)[
        None, :, None] + 0.5) * scale + offset[:, None, None]
    x = torch.arange(in_size, device=dev, dtype=torch.float32)[None, None]
    w = _pil_bicubic((x + 0.5 - centre) / fscale)
    inside = (x >= offset[:, None, None]) & (
        x < (offset + length)[:, None, None])
    w = torch.where(inside, w, 0.)
    return w / w.sum(dim=2, keepdim=True)


def resized_crop_flip(img: torch.Tensor, crop: torch.Tensor,
                      flip: Optional[torch.Tensor], size: int,
                      quantize: bool = True) -> torch.Tensor:
    """Crop ``(i, j, h, w)`` per sample, resize to ``size`` (PIL bicubic),
    optionally flip. ``img``: (n, c, H, W) uint8 or float in 0..255.
    Returns float32 in 0..255 (integer-valued when ``quantize``)."""
    n, _, H, W = img.shape
    x = img.float()
    i, j, h, w = crop.float().unbind(1)
    wy = resample_matrix(i, h, H, size)  # (n, size, H)
    wx = resample_matrix(j, w, W, size)  # (n, size, W)
    if flip is not None:
        wx = torch.where(flip[:, None, None], wx.flip(1), wx)
    # PIL: horizontal pass first, to uint8, then vertical.
    x = torch.matmul(x, wx.transpose(1, 2)[:, None])  # (n, c, H, size)
    if quantize:
        x = x.round_().clamp_(0, 255)
    x = torch.matmul(wy[:, None], x)  # (n, c, size, size)
    if quantize:
        x = x.round_()
    return x.clamp_(0, 255)


# ---------------------------------------------------------------------------
# colour ops (torchvision tensor semantics, per-sample factors)
# ---------------------------------------------------------------------------
def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(-3)


def _rgb2hsv(img: torch.Tensor) -> torch.Tensor:
    # torchvision.transforms._functional_tensor._rgb2hsv
    r, g, b = img.unbind(dim=-3)
    maxc = torch.max(img, dim=-3).values
    minc = torch.min(img, dim=-3).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc = (maxc - r) / cr_divisor
    gc = (maxc - g) / cr_divisor
    bc = (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = (hr + hg + hb)
    h = torch.fmod((h / 6.0 + 1.0), 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def _hsv2rgb(img: torch.Tensor) -> torch.Tensor:
    # torchvision.transforms._functional_tensor._hsv2rgb
    h, s, v = img.unbind(dim=-3)
    i = torch.floor(h * 6.0)
    f = (h * 6.0) - i
    i = i.to(dtype=torch.int32)
    p = torch.clamp((v * (1.0 - s)), 0.0, 1.0)
    q = torch.clamp((v * (1.0 - s * f)), 0.0, 1.0)
    t = torch.clamp((v * (1.0 - s * (1.0 - f))), 0.0, 1.0)
    i = i % 6
    mask = i.unsqueeze(dim=-3) == torch.arange(
        6, device=i.device).view(-1, 1, 1)
    a1 = torch.stack((v, q, p, p, t, v), dim=-3)
    a2 = torch.stack((t, v, v, q, p, p), dim=-3)
    a3 = torch.stack((p, p, t, v, v, q), dim=-3)
    a4 = torch.stack((a1, a2, a3), dim=-4)
    return torch.einsum('...ijk, ...xijk -> ...xjk', mask.to(img.dtype), a4)


def adjust_hue(x: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Per-sample ``torchvision.transforms.functional.adjust_hue`` on float
    (n, 3, H, W) in [0, 1]; ``hue`` (n,) in [-0.5, 0.5]."""
    hsv = _rgb2hsv(x)
    h = torch.remainder(hsv[:, 0] + hue[:, None, None], 1.0)
    return _hsv2rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), dim=1))


def _linear_round(x: torch.Tensor, op: torch.Tensor, factors: torch.Tensor,
                  active: torch.Tensor) -> torch.Tensor:
    """One of brightness (0) / contrast (1) / saturation (2) per sample as
    torchvision's ``_blend(img, degenerate, f)``; op 3 (hue) or inactive
    samples are left unchanged (f = 1)."""
    f = factors[:, :3].gather(1, op.clamp(max=2)[:, None]).squeeze(1)
    f = torch.where(active & (op < 3), f, 1.)[:, None, None, None]
    gray = _gray(x)
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    opv = op[:, None, None, None]
    degenerate = torch.where(opv == 1, mean,
                             torch.where(opv == 2, gray, 0.))
    return (f * x + (1.0 - f) * degenerate).clamp_(0, 1)


def color_jitter(x: torch.Tensor, apply: torch.Tensor, factors: torch.Tensor,
                 order: torch.Tensor) -> torch.Tensor:
    """torchvision ``ColorJitter`` per sample, each with its own random op
    order: the linear ops before the hue shift, the hue shift (one batched
    HSV round trip), then the linear ops after it."""
    hue_pos = torch.argmax((order == 3).to(torch.uint8), dim=1)
    for k in range(4):
        x = _linear_round(x, order[:, k], factors, apply & (k < hue_pos))
    x = torch.where(apply[:, None, None, None],
                    adjust_hue(x, factors[:, 3]), x)
    for k in range(4):
        x = _linear_round(x, order[:, k], factors, apply & (k > hue_pos))
    return x


def grayscale(x: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    return torch.where(apply[:, None, None, None], _gray(x).expand_as(x), x)


def solarize(x: torch.Tensor, apply: torch.Tensor,
             threshold: float = 128 / 255) -> torch.Tensor:
    return torch.where(apply[:, None, None, None] & (x >= threshold), 1 - x,
                       x)


# ---------------------------------------------------------------------------
# blur
# ---------------------------------------------------------------------------
def pil_box_kernel(sigma: torch.Tensor,
                   passes: int = 3,
                   sigma_max: float = BLUR_SIGMA[1]) -> torch.Tensor:
    """Per-sample 1-D kernel of one of PIL's extended box blur passes for
    ``GaussianBlur(radius=sigma)`` (ImagingGaussianBlur: 3 passes of a box
    with fractional radius ``l + a`` whose total variance is sigma^2).
    Returns (n, 2 * lmax + 3) with lmax = floor of the largest box radius."""
    sigma2 = sigma.double()**2 / passes
    big_l = torch.sqrt(12.0 * sigma2 + 1.0)
    l_int = torch.floor((big_l - 1.0) / 2.0)
    a = (2 * l_int + 1) * (l_int * (l_int + 1) - 3 * sigma2)
    a = a / (6 * (sigma2 - (l_int + 1)**2))
    radius = l_int + a
    # Static width from the range's upper end (sigma <= 2 -> l_int <= 1:
    # 5 taps), so nothing depends on the sampled values on the host.
    lmax = int(
        math.floor((math.sqrt(12.0 * sigma_max**2 / passes + 1) - 1) / 2))
    half = lmax + 1
    taps = torch.arange(-half, half + 1, device=sigma.device,
                        dtype=torch.float64)[None]
    ri = l_int[:, None]
    inner = (taps.abs() <= ri).double()
    edge = (taps.abs() == ri + 1).double() * (radius[:, None] - ri)
    k = (inner + edge) / (2 * radius[:, None] + 1)
    return k.float()


def gaussian_kernel(sigma: torch.Tensor, size: int = 23) -> torch.Tensor:
    """torchvision ``_get_gaussian_kernel1d`` per sample: (n, size)."""
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, steps=size, device=sigma.device)[None]
    pdf = torch.exp(-0.5 * (x / sigma[:, None])**2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def _conv1d(x: torch.Tensor, kernel: torch.Tensor, dim: int,
            mode: str) -> torch.Tensor:
    """Per-sample 1-D correlation along ``dim`` (-1 or -2) of (n, c, H, W)
    as a sum of shifted slices (fused multiply-adds, no grouped conv)."""
    k = kernel.shape[1]
    half = k // 2
    pad = (half, half, 0, 0) if dim == -1 else (0, 0, half, half)
    xp = F.pad(x, pad, mode=mode)
    size = x.shape[dim]
    out = None
    for t in range(k):
        sl = xp.narrow(dim, t, size)
        term = kernel[:, t, None, None, None] * sl
        out = term if out is None else out + term
    return out


def gaussian_blur(x: torch.Tensor,
                  apply: torch.Tensor,
                  sigma: torch.Tensor,
                  kind: str = 'pil',
                  kernel_size: int = 23,
                  sigma_max: float = BLUR_SIGMA[1]) -> torch.Tensor:
    """Per-sample blur; samples with ``apply`` False get a delta kernel
    (an exact identity in float)."""
    if kind == 'pil':
        kernel = pil_box_kernel(sigma, sigma_max=sigma_max)
        passes, mode = 3, 'replicate'
    elif kind == 'gaussian':
        kernel = gaussian_kernel(sigma, kernel_size)
        passes, mode = 1, 'reflect'
    else:
        raise ValueError(f'unknown blur kind {kind!r}')
    delta = torch.zeros_like(kernel)
    delta[:, kernel.shape[1] // 2] = 1.0
    kernel = torch.where(apply[:, None], kernel, delta)
    for dim in (-1, -2):
        for _ in range(passes):
            x = _conv1d(x, kernel, dim, mode)
    return x


# ---------------------------------------------------------------------------
# one view
# ---------------------------------------------------------------------------
def apply_view(img: torch.Tensor,
               params: Dict[str, torch.Tensor],
               size: int = CROP_SIZE,
               blur: str = 'pil',
               mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD,
               normalize: bool = True,
               sigma_max: float = BLUR_SIGMA[1]) -> torch.Tensor:
    """One view of a uint8 RGB batch (n, 3, H, W) with given parameters.
    Returns float32 (n, 3, size, size), normalised (or in [0, 1])."""
    x = resized_crop_flip(img, params['crop'], params['flip'], size)
    x = x.mul_(1.0 / 255)
    x = color_jitter(x, params['jitter'], params['factors'], params['order'])
    x = grayscale(x, params['gray'])
    x = gaussian_blur(x, params['blur'], params['sigma'], kind=blur,
                      sigma_max=sigma_max)
    x = solarize(x, params['solarize'])
    if normalize:  # per channel with Python scalars: no host->device copy
        x = torch.stack([(x[:, c] - mean[c]) / std[c] for c in range(3)],
                        dim=1)
    return x
