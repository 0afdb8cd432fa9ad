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

``VICRegGPUViewsPreprocessor`` (registered in mmpretrain's ``MODELS``) is a
``data_preprocessor`` taking the uint8 batch from the loader and returning
the two views, computed in fp32 with autocast disabled (mmengine runs the
preprocessor inside AMP's autocast context); see
``configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled-gpuviews.py``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.2989, 0.587, 0.114)

# (blur_prob, solarize_prob) of the official views.
VIEW1 = dict(blur_prob=1.0, solarize_prob=0.0)
VIEW2 = dict(blur_prob=0.1, solarize_prob=0.2)


def _rand(shape, device, generator) -> torch.Tensor:
    return torch.rand(shape, device=device, generator=generator)


# ---------------------------------------------------------------------------
# parameter sampling (same distributions as torchvision / official code)
# ---------------------------------------------------------------------------
def sample_crop_params(n: int,
                       height: int,
                       width: int,
                       scale: Tuple[float, float] = (0.08, 1.0),
                       ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
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
                       flip_prob: float = 0.5,
                       jitter_prob: float = 0.8,
                       jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1),
                       gray_prob: float = 0.2,
                       sigma: Tuple[float, float] = (0.1, 2.0),
                       scale: Tuple[float, float] = (0.08, 1.0),
                       ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
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
                   sigma_max: float = 2.0) -> torch.Tensor:
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
                  sigma_max: float = 2.0) -> torch.Tensor:
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
# one view / two views
# ---------------------------------------------------------------------------
def apply_view(img: torch.Tensor,
               params: Dict[str, torch.Tensor],
               size: int = 224,
               blur: str = 'pil',
               mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD,
               normalize: bool = True,
               sigma_max: float = 2.0) -> torch.Tensor:
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


def vicreg_views(img: torch.Tensor,
                 size: int = 224,
                 blur: str = 'pil',
                 generator: Optional[torch.Generator] = None,
                 views: Sequence[dict] = (VIEW1, VIEW2),
                 sigma: Tuple[float, float] = (0.1, 2.0),
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
            official (1.0, 0.0) and (0.1, 0.2).
        channels_last (bool): Return channels-last views. Defaults to False.
        seed (int, optional): Own generator seeded with ``seed + rank``
            instead of torch's global RNG (which mmengine seeds).
    """

    def __init__(self,
                 size: int = 224,
                 to_rgb: bool = True,
                 blur: str = 'pil',
                 sigma: Tuple[float, float] = (0.1, 2.0),
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
