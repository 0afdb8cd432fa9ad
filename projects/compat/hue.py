"""numpy 2 safe replacement for ``mmcv.adjust_hue``.

mmcv 2.1.0 rotates the hue channel with ``h += np.uint8(hue_factor * 255)``.
numpy < 2 wrapped a negative value modulo 256; numpy 2 raises
``OverflowError``, which kills every SSL view pipeline (ColorJitter draws
hue_factor from [-0.1, 0.1]). This is the same rotation with the wrap done
explicitly. It is installed as ``mmcv.adjust_hue`` (the name mmpretrain's
``ColorJitter`` calls) and in ``mmcv.image``/``mmcv.image.photometric``.
"""
import cv2
import mmcv
import mmcv.image
import mmcv.image.photometric as photometric
import numpy as np
from PIL import Image

_mmcv_adjust_hue = photometric.adjust_hue


def _hue_shift(hue_factor: float) -> np.uint8:
    # int() truncates toward zero exactly as numpy 1's float->uint8 cast did.
    return np.uint8(int(hue_factor * 255) % 256)


def adjust_hue(img: np.ndarray, hue_factor: float, backend=None) -> np.ndarray:
    """Rotate the hue of a BGR image by ``hue_factor`` in [-0.5, 0.5]."""
    if backend is None:
        backend = photometric.imread_backend
    if backend not in ['cv2', 'pillow']:
        raise ValueError(f'backend: {backend} is not supported.'
                         f"Supported backends are 'cv2', 'pillow'")
    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and (img.ndim in {2, 3})):
        raise TypeError('img should be ndarray with dim=[2 or 3].')

    shift = _hue_shift(hue_factor)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        h, s, v = pil_image.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8)
        np_h += shift  # uint8 addition wraps around the hue circle
        h = Image.fromarray(np_h, 'L')
        pil_image = Image.merge('HSV', (h, s, v)).convert('RGB')
        return np.array(pil_image, dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv_img = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv_img)
    h = h.astype(np.uint8)
    h += shift
    hsv_img = cv2.merge([h, s, v])
    return cv2.cvtColor(hsv_img, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


for _namespace in (mmcv, mmcv.image, photometric):
    _namespace.adjust_hue = adjust_hue
