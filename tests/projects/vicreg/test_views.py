"""projects/vicreg/views.py is the one copy of the official view parameters:
the cv2 pipeline config (which cannot import it) states the same values, and
the GPU preprocessor and the PIL reference default to them."""
import os.path as osp

from mmengine.config import Config
from process_helpers import ROOT

from projects.vicreg import views as V
from projects.vicreg.models.utils.gpu_views import VICRegGPUViewsPreprocessor

CV2_VIEWS = osp.join(ROOT, 'configs/vicreg/_base_/datasets/'
                     'imagenet_bs64_vicreg.py')


def test_cv2_pipeline_config_states_the_official_values():
    cfg = Config.fromfile(CV2_VIEWS)
    assert cfg.view_crop.scale == V.CROP_SIZE
    assert cfg.view_flip.prob == V.FLIP_PROB
    jitter = cfg.view_jitter.transforms[0]
    assert (jitter.brightness, jitter.contrast, jitter.saturation,
            jitter.hue) == V.JITTER
    assert cfg.view_jitter.prob == V.JITTER_PROB
    assert cfg.view_grayscale.prob == V.GRAY_PROB
    for blur, solarize, view in ((cfg.view1_blur, cfg.view1_solarize,
                                  V.VIEW1),
                                 (cfg.view2_blur, cfg.view2_solarize,
                                  V.VIEW2)):
        assert tuple(blur.sigma) == V.BLUR_SIGMA
        assert solarize.thr == V.SOLARIZE_THRESHOLD
        assert dict(blur_prob=blur.prob, solarize_prob=solarize.prob) == view
    # mmpretrain's RandomResizedCrop defaults are torchvision's
    from mmpretrain.datasets.transforms import RandomResizedCrop
    crop = RandomResizedCrop(scale=V.CROP_SIZE)
    assert crop.crop_ratio_range == V.CROP_SCALE
    assert crop.aspect_ratio_range == V.CROP_RATIO
    mean = [m / 255 for m in cfg.data_preprocessor.mean]
    std = [s / 255 for s in cfg.data_preprocessor.std]
    assert all(abs(a - b) < 1e-9 for a, b in zip(mean, V.IMAGENET_MEAN))
    assert all(abs(a - b) < 1e-9 for a, b in zip(std, V.IMAGENET_STD))


def test_gpu_preprocessor_defaults_are_the_official_values():
    pre = VICRegGPUViewsPreprocessor()
    assert pre.size == V.CROP_SIZE and pre.sigma == V.BLUR_SIGMA
    assert pre.views == [V.VIEW1, V.VIEW2]
    assert pre.mean == V.IMAGENET_MEAN and pre.std == V.IMAGENET_STD
    # a config's values win
    pre = VICRegGPUViewsPreprocessor(size=32, views=[dict(blur_prob=0.5)])
    assert pre.size == 32 and pre.views == [dict(blur_prob=0.5)]
