"""Unlabeled images for semi-supervised detection (the unlabeled stream of
Soft Teacher, Xu et al., "End-to-End Semi-Supervised Object Detection with
Soft Teacher", ICCV 2021).

MMDetection's semi pipelines need image info only (path, id; width and
height for ``GroupMultiSourceSampler``'s aspect-ratio groups); mmdet's own
configs get it from a COCO json without annotations. The competition's unlabeled data is
a bare image folder, so this dataset lists it with the same listing code
(and cache) as the VICReg folder dataset, and never opens anything but
images: no annotation file, no label file.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from projects.vicreg.datasets.image_listing import IMG_EXTENSIONS, list_images


@DATASETS.register_module()
class UnlabeledDetDataset(BaseDetDataset):
    """A folder of images without labels, in mmdet's scope.

    Each item is ``dict(img_path, img_id, width, height)``; pipelines load
    no annotations (mmdet's ``LoadEmptyAnnotations``).

    Args:
        data_root (str): The image folder (flat or nested).
        data_prefix (dict): ``dict(img='sub/folder/')`` under ``data_root``.
        img_size (tuple[int, int], optional): ``(width, height)`` shared by
            every image (the competition's 224x224 PNGs): the data list's
            width/height without opening 512,000 files.
            None (default) reads each image's header once (PIL, lazy).
        extensions (Sequence[str]): Accepted extensions (any case); other
            files, e.g. label files, are never listed.
        listing_cache (str, optional): Folder for the listing cache, as
            :class:`projects.vicreg.datasets.UnlabeledImageFolder`.
        **kwargs: Other arguments of :class:`mmdet.datasets.BaseDetDataset`
            (``metainfo`` must equal the labeled dataset's for mmengine's
            ``ConcatDataset``).
    """

    def __init__(self,
                 data_root: str,
                 data_prefix: dict = dict(img=''),
                 img_size: Optional[Tuple[int, int]] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 listing_cache: Optional[str] = 'auto',
                 **kwargs) -> None:
        if kwargs.get('ann_file'):
            raise ValueError(
                f"UnlabeledDetDataset reads no annotation file (got ann_file="
                f"{kwargs['ann_file']!r}); remove it from the unlabeled "
                f'dataset config')
        if img_size is not None and (len(img_size) != 2
                                     or min(img_size) <= 0):
            raise ValueError(f'img_size must be (width, height) > 0, got '
                             f'{img_size!r}')
        self.img_size = tuple(img_size) if img_size is not None else None
        self.extensions = tuple(extensions)
        self.listing_cache = listing_cache
        super().__init__(
            data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img') or self.data_root
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'unlabeled image folder {root} does not exist; set the '
                f'unlabeled dataset\'s data_root (e.g. --cfg-options '
                f'train_dataloader.dataset.datasets.1.data_root=DIR)')
        files = list_images(root, self.extensions, self.listing_cache)
        if not files:
            raise RuntimeError(f'no images with extensions '
                               f'{self.extensions} in {root}')
        data_list = []
        for i, rel in enumerate(files):
            path = osp.join(root, rel)
            width, height = self.img_size or _image_size(path)
            data_list.append(
                dict(img_path=path, img_id=i, width=width, height=height))
        return data_list


def _image_size(path: str) -> Tuple[int, int]:
    from PIL import Image
    try:
        with Image.open(path) as img:  # header only
            return img.size
    except Exception as err:
        raise RuntimeError(
            f'cannot read the size of unlabeled image {path} ({err}); '
            f'remove or replace the file') from err
