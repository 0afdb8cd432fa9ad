"""projects/vicreg/models/utils/gpu_views.py on CPU: shapes, determinism, parameter
distributions vs the official transform, and each op vs PIL / torchvision's
functional ops on single images."""
import math

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter, ImageOps
from scipy import stats

from projects.vicreg.models.utils import gpu_view_ops as GO
from projects.vicreg.models.utils import gpu_views as G


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _image(seed=0, size=224):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


def _tensor(img):
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].contiguous()


def _float(img):
    return _tensor(img).float() / 255


# --------------------------------------------------------------- shapes etc.
def test_shapes_dtypes_and_determinism():
    imgs = torch.cat([_tensor(_image(s, 96)) for s in range(4)])
    g = torch.Generator().manual_seed(3)
    v1, v2 = G.vicreg_views(imgs, size=64, generator=g)
    assert v1.shape == v2.shape == (4, 3, 64, 64)
    assert v1.dtype == v2.dtype == torch.float32
    assert torch.isfinite(v1).all() and torch.isfinite(v2).all()
    w1, w2 = G.vicreg_views(imgs, size=64,
                            generator=torch.Generator().manual_seed(3))
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    u1, _ = G.vicreg_views(imgs, size=64,
                           generator=torch.Generator().manual_seed(4))
    assert not torch.equal(v1, u1)
    # the two views differ (independent parameters)
    assert not torch.equal(v1, v2)


def test_preprocessor_registered_and_runs():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import projects.vicreg  # noqa: F401

    # earlier tests may leave another default scope (e.g. mmdet) current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        _check_preprocessor(MODELS)


def _check_preprocessor(MODELS):
    pre = MODELS.build(
        dict(type='VICRegGPUViewsPreprocessor', size=32, seed=0,
             channels_last=True))
    bgr = torch.cat([_tensor(_image(s, 48)) for s in range(3)])
    out = pre(dict(inputs=[b for b in bgr], data_samples=None), True)
    assert len(out['inputs']) == 2
    for v in out['inputs']:
        assert v.shape == (3, 3, 32, 32)
        assert v.is_contiguous(memory_format=torch.channels_last)
    pre2 = MODELS.build(
        dict(type='VICRegGPUViewsPreprocessor', size=32, seed=0))
    out2 = pre2(dict(inputs=bgr, data_samples=None), True)
    assert torch.equal(out['inputs'][0], out2['inputs'][0])


def test_gpuviews_config_builds():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/vicreg/'
                          'vicreg_resnet50_1xb128-coslr-230e_'
                          'unlabeled-gpuviews.py')
    assert cfg.data_preprocessor.type == 'VICRegGPUViewsPreprocessor'
    assert '_delete_' not in cfg.data_preprocessor
    types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'MultiView' not in types and types[-1] == 'PackInputs'
    assert cfg.env_cfg.cudnn_benchmark


# ----------------------------------------------------------- distributions
N = 20000


def test_crop_param_distribution_matches_torchvision():
    torch.manual_seed(0)
    H, W = 224, 224
    ours = G.sample_crop_params(N, H, W,
                                generator=torch.Generator().manual_seed(1))
    ref = torch.tensor(
        [T.RandomResizedCrop.get_params(torch.empty(3, H, W), (0.08, 1.0),
                                        (3 / 4, 4 / 3)) for _ in range(N)],
        dtype=torch.float32)
    for name, fn in [
        ('area', lambda p: p[:, 2] * p[:, 3] / (H * W)),
        ('log_ratio', lambda p: torch.log(p[:, 3] / p[:, 2])),
        ('top', lambda p: p[:, 0]),
        ('left', lambda p: p[:, 1]),
        ('centre_y', lambda p: p[:, 0] + p[:, 2] / 2),
    ]:
        res = stats.ks_2samp(fn(ours).numpy(), fn(ref).numpy())
        assert res.pvalue > 1e-3, (name, res)
    i, j, h, w = ours.unbind(1)
    assert (h >= 1).all() and (w >= 1).all()
    assert (i + h <= H).all() and (j + w <= W).all()
    assert torch.equal(ours, ours.round())


def test_crop_fallback_is_centre_crop():
    # an extreme aspect image rarely admits a valid try: torchvision's
    # fallback clamps to the ratio range and centres.
    H, W = 10, 400
    ours = G.sample_crop_params(2000, H, W, scale=(0.9, 1.0),
                                generator=torch.Generator().manual_seed(0))
    fw = int(round(H * 4 / 3))
    expect = torch.tensor([0, (W - fw) // 2, H, fw], dtype=torch.float32)
    assert (ours == expect).all(dim=1).all()


def test_view_param_distributions():
    g = torch.Generator().manual_seed(5)
    p = G.sample_view_params(N, 224, 224, blur_prob=0.1, solarize_prob=0.2,
                             generator=g)

    def close_prob(mask, prob):
        k = mask.float().sum().item()
        lo, hi = stats.binom.interval(1 - 1e-4, N, prob)
        assert lo <= k <= hi, (k, prob)

    close_prob(p['flip'], 0.5)
    close_prob(p['jitter'], 0.8)
    close_prob(p['gray'], 0.2)
    close_prob(p['blur'], 0.1)
    close_prob(p['solarize'], 0.2)
    # jitter factors: torchvision's ColorJitter ranges, uniform
    for col, (lo, hi) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2),
                                    (-0.1, 0.1)]):
        res = stats.kstest(p['factors'][:, col].numpy(), 'uniform',
                           args=(lo, hi - lo))
        assert res.pvalue > 1e-3, (col, res)
    res = stats.kstest(p['sigma'].numpy(), 'uniform', args=(0.1, 1.9))
    assert res.pvalue > 1e-3
    # op order: a uniform permutation of the four ops per sample (24)
    codes = (p['order'] * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.bincount(codes, minlength=256)
    counts = counts[counts > 0]
    assert len(counts) == 24
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    assert (p['order'].sort(1).values == torch.arange(4)).all()
    # independent of each other (e.g. flip vs gray)
    table = np.array([[((p['flip'] == a) & (p['gray'] == b)).sum().item()
                       for b in (0, 1)] for a in (0, 1)])
    assert stats.chi2_contingency(table).pvalue > 1e-3


# ---------------------------------------------------------- ops vs reference
@pytest.mark.parametrize('box', [(0, 0, 224, 224), (10, 20, 100, 150),
                                 (50, 3, 64, 200), (100, 100, 17, 40)])
@pytest.mark.parametrize('flip', [False, True])
def test_resized_crop_matches_pil_bicubic(box, flip):
    img = _image(1)
    i, j, h, w = box
    ref = img.crop((j, i, j + w, i + h)).resize((224, 224), Image.BICUBIC)
    if flip:
        ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
    ref = np.asarray(ref).astype(int)
    out = G.resized_crop_flip(
        _tensor(img), torch.tensor([box], dtype=torch.float32),
        torch.tensor([flip]), 224)
    out = out[0].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(out - ref).max() <= 1
    assert (out != ref).mean() < 0.01


def test_resized_crop_downscale_matches_pil_antialias():
    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8))
    ref = np.asarray(img.crop((30, 10, 380, 290)).resize((224, 224),
                                                       Image.BICUBIC))
    out = G.resized_crop_flip(_tensor(img), torch.tensor([[10, 30, 280,
                                                          350.]]), None, 224)
    out = out[0].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(out - ref.astype(int)).max() <= 1


@pytest.mark.parametrize('factor', [0.6, 0.93, 1.4])
def test_brightness_contrast_saturation_match_torchvision(factor):
    x = torch.cat([_float(_image(s, 64)) for s in range(2)])
    ones = torch.ones(2, dtype=torch.bool)
    for op, fn in enumerate([TF.adjust_brightness, TF.adjust_contrast,
                             TF.adjust_saturation]):
        f = torch.full((2, 4), factor)
        out = GO._linear_round(x, torch.full((2, ), op), f, ones)
        ref = torch.stack([fn(xi, factor) for xi in x])
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    # vs PIL (uint8 per op): within a level
    img = _image(0, 64)
    out = GO._linear_round(_float(img), torch.tensor([0]),
                          torch.full((1, 4), factor), ones[:1])
    ref = np.asarray(TF.adjust_brightness(img, factor)).astype(float)
    assert np.abs(out[0].permute(1, 2, 0).numpy() * 255 - ref).max() <= 1.0


@pytest.mark.parametrize('hue', [-0.1, -0.03, 0.0, 0.07])
def test_hue_matches_torchvision(hue):
    x = torch.cat([_float(_image(s, 64)) for s in range(2)])
    out = G.adjust_hue(x, torch.full((2, ), hue))
    ref = torch.stack([TF.adjust_hue(xi, hue) for xi in x])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_color_jitter_random_order_matches_sequential_torchvision():
    x = torch.cat([_float(_image(s, 48)) for s in range(6)])
    g = torch.Generator().manual_seed(0)
    p = G.sample_view_params(6, 48, 48, 1.0, 0.0, generator=g)
    apply = torch.tensor([True, True, True, True, True, False])
    out = G.color_jitter(x, apply, p['factors'], p['order'])
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation,
           TF.adjust_hue]
    for n in range(6):
        ref = x[n]
        if apply[n]:
            for op in p['order'][n].tolist():
                ref = fns[op](ref, p['factors'][n, op].item())
        torch.testing.assert_close(out[n], ref, atol=1e-5, rtol=0)


def test_grayscale_and_solarize():
    img = _image(3, 64)
    x = _float(img)
    yes = torch.tensor([True])
    g = G.grayscale(x, yes)
    torch.testing.assert_close(g[0], TF.rgb_to_grayscale(x[0], 3))
    pil = np.asarray(img.convert('L')).astype(float) / 255
    assert np.abs(g[0, 0].numpy() - pil).max() <= 1 / 255 + 1e-6
    assert torch.equal(G.grayscale(x, ~yes), x)
    s = G.solarize(x, yes)
    ref = torch.from_numpy(np.array(ImageOps.solarize(img))).permute(
        2, 0, 1).float() / 255
    # same pixels flipped as PIL (1 - x vs (255 - v) / 255: an ulp apart)
    torch.testing.assert_close(s[0], ref, atol=1e-6, rtol=0)
    assert torch.equal(s[0] != x[0], ref != x[0])
    torch.testing.assert_close(s[0], TF.solarize(x[0], 128 / 255))
    assert torch.equal(G.solarize(x, ~yes), x)


@pytest.mark.parametrize('sigma', [0.1, 0.7, 1.37, 2.0])
def test_blur_matches_pil_gaussian_blur(sigma):
    img = _image(4)
    ref = np.asarray(img.filter(ImageFilter.GaussianBlur(sigma))).astype(
        float)
    x = _tensor(img).float()
    out = G.gaussian_blur(x, torch.tensor([True]), torch.tensor([sigma]))
    diff = np.abs(out[0].permute(1, 2, 0).numpy() - ref)
    # PIL rounds to uint8 after each of its 6 box passes
    assert diff.max() <= 3.0 and diff.mean() < 0.8
    # the filter's variance is sigma^2 per axis (PIL's design)
    k = G.pil_box_kernel(torch.tensor([sigma]))[0].double()
    taps = torch.arange(k.numel(), dtype=torch.float64) - k.numel() // 2
    var1 = (k * taps**2).sum()
    assert math.isclose(3 * var1.item(), sigma**2, rel_tol=1e-6)
    # not applied: exact identity
    assert torch.equal(
        G.gaussian_blur(x, torch.tensor([False]), torch.tensor([sigma])), x)


def test_gaussian_kind_matches_torchvision_gaussian_blur():
    x = _float(_image(5, 64))
    out = G.gaussian_blur(x, torch.tensor([True]), torch.tensor([1.3]),
                          kind='gaussian', kernel_size=23)
    ref = TF.gaussian_blur(x[0], [23, 23], [1.3, 1.3])
    torch.testing.assert_close(out[0], ref, atol=1e-5, rtol=0)


def test_full_view_close_to_official_pil_pipeline():
    """Same parameters through the official PIL ops and ours: the normalised
    outputs agree to a few uint8 levels."""
    img = _image(6)
    g = torch.Generator().manual_seed(11)
    p = G.sample_view_params(1, 224, 224, 1.0, 1.0, generator=g)
    p['order'] = torch.tensor([[0, 1, 2, 3]])  # fixed order for PIL check
    p['jitter'] = torch.tensor([True])
    p['gray'] = torch.tensor([False])
    out = G.apply_view(_tensor(img), p, normalize=False)[0]
    i, j, h, w = [int(v) for v in p['crop'][0]]
    ref = img.crop((j, i, j + w, i + h)).resize((224, 224), Image.BICUBIC)
    if p['flip'][0]:
        ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
    b, c, s, hh = p['factors'][0].tolist()
    ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(
        TF.adjust_brightness(ref, b), c), s), hh)
    ref = ref.filter(ImageFilter.GaussianBlur(p['sigma'][0].item()))
    ref = ImageOps.solarize(ref)
    ref = TF.to_tensor(ref)
    diff = (out - ref).abs()
    # solarize flips pixels near the threshold that rounding moved across
    assert diff.mean() < 4 / 255 and (diff > 8 / 255).float().mean() < 0.01


def test_views_under_autocast_stay_fp32():
    """mmengine calls the data preprocessor inside optim_context (autocast
    with AMP): the views must not change, so the PIL bound above holds."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import projects.vicreg  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pre = MODELS.build(
            dict(type='VICRegGPUViewsPreprocessor', size=64, seed=0))
        pre_amp = MODELS.build(
            dict(type='VICRegGPUViewsPreprocessor', size=64, seed=0))
    bgr = torch.cat([_tensor(_image(s, 96)) for s in range(3)])
    ref = pre(dict(inputs=bgr, data_samples=None), True)['inputs']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = pre_amp(dict(inputs=bgr, data_samples=None), True)['inputs']
    for a, b in zip(out, ref):
        assert a.dtype == torch.float32
        assert torch.equal(a, b)
    # the bound itself, under autocast: the resize vs PIL within 1 level
    img = _image(1)
    box = (10, 20, 100, 150)
    pil = np.asarray(img.crop((20, 10, 170, 110)).resize(
        (224, 224), Image.BICUBIC)).astype(int)
    crop = torch.tensor([box], dtype=torch.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with torch.autocast('cpu', enabled=False):  # what forward does
            ok = G.resized_crop_flip(_tensor(img), crop, None, 224)
        # negative control: the same op left to autocast misses the bound
        bad = G.resized_crop_flip(_tensor(img), crop, None, 224)
    ok = ok[0].permute(1, 2, 0).float().numpy().astype(int)
    bad = bad[0].permute(1, 2, 0).float().numpy().astype(int)
    assert np.abs(ok - pil).max() <= 1
    assert np.abs(bad - pil).max() > 1
