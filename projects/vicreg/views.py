"""The official VICReg view parameters (``augmentations.py``
``TrainTransform`` of facebookresearch/vicreg), in one place.

Used by the batched views on the device
(:mod:`projects.vicreg.models.utils.gpu_views`: the defaults of
``VICRegGPUViewsPreprocessor``, whose config may change them) and the PIL
reference (:mod:`projects.vicreg.reference.augmentations`). The cv2 view
pipeline is a config (``configs/vicreg/_base_/datasets/
imagenet_bs64_vicreg.py``), which cannot import them;
``tests/projects/vicreg/test_views.py`` checks its values against these.
"""
CROP_SIZE = 224
CROP_SCALE = (0.08, 1.0)  # RandomResizedCrop's area fraction
CROP_RATIO = (3. / 4., 4. / 3.)
FLIP_PROB = 0.5
JITTER = (0.4, 0.4, 0.2, 0.1)  # brightness, contrast, saturation, hue
JITTER_PROB = 0.8
GRAY_PROB = 0.2
BLUR_SIGMA = (0.1, 2.0)  # in pixels of a CROP_SIZE crop
SOLARIZE_THRESHOLD = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The asymmetric ops: view 1 always blurred, view 2 sometimes solarized.
VIEW1 = dict(blur_prob=1.0, solarize_prob=0.0)
VIEW2 = dict(blur_prob=0.1, solarize_prob=0.2)
