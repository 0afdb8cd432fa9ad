"""Ground-truth object crops of a labeled split (COCO json of the converter).

The labeled competition data has boxes and class names, not image labels;
its objects, cropped with some context, are the labeled images an SSL
backbone is probed on (:class:`ObjectCropKNN`).
"""
import json
import os.path as osp
from collections import defaultdict
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch


class ObjectCrops:
    """The object crops of one split, chosen once, decoded on demand.

    Every annotation of ``ann_file`` becomes one crop: its box padded by
    ``margin`` times the box width/height on each side (context), clipped to
    the image, resized to ``size`` x ``size`` (RGB, uint8). With
    ``max_per_class`` at most that many objects per class are kept, drawn
    with ``seed`` (the same on every rank and every run with that seed).

    Args:
        ann_file: COCO json written by
            ``tools/dataset_converters/yaml_to_coco.py``.
        img_dir: folder the json's ``file_name`` entries are relative to.
        size: crop side in pixels (the pretraining resolution).
        margin: context added on each side, as a fraction of the box side.
        max_per_class: cap per class (``None``: every object).
        seed: seed of the per-class draw.
    """

    def __init__(self, ann_file: str, img_dir: str, size: int,
                 margin: float = 0.1, max_per_class: Optional[int] = None,
                 seed: int = 0) -> None:
        if margin < 0:
            raise ValueError(f'ObjectCrops: margin must be >= 0, got {margin}')
        self.ann_file, self.img_dir, self.size = ann_file, img_dir, size
        coco = self._load(ann_file)
        # contiguous labels in category-id order (the converter's class order)
        cats = sorted(coco['categories'], key=lambda c: c['id'])
        self.classes = [c['name'] for c in cats]
        label_of = {c['id']: i for i, c in enumerate(cats)}
        images = {im['id']: im for im in coco['images']}
        by_class = defaultdict(list)
        for ann in sorted(coco['annotations'], key=lambda a: a['id']):
            if ann['category_id'] not in label_of or \
                    ann['image_id'] not in images:
                raise ValueError(
                    f'{ann_file}: annotation {ann["id"]} refers to an unknown '
                    f'category {ann["category_id"]} or image '
                    f'{ann["image_id"]}; regenerate it with '
                    f'tools/dataset_converters/yaml_to_coco.py')
            by_class[label_of[ann['category_id']]].append(ann)
        rng = np.random.default_rng(seed)
        chosen = []
        for label in sorted(by_class):
            anns = by_class[label]
            if max_per_class is not None and len(anns) > max_per_class:
                keep = np.sort(rng.permutation(len(anns))[:max_per_class])
                anns = [anns[i] for i in keep]
            chosen += [(a, label) for a in anns]
        chosen.sort(key=lambda al: al[0]['id'])
        self.files: List[str] = []
        self.boxes: List[Tuple[int, int, int, int]] = []
        labels = []
        for ann, label in chosen:
            im = images[ann['image_id']]
            self.files.append(osp.join(img_dir, im['file_name']))
            self.boxes.append(self._padded_box(ann['bbox'], margin,
                                               im['width'], im['height']))
            labels.append(label)
        self.labels = torch.tensor(labels, dtype=torch.long)

    @staticmethod
    def _load(ann_file: str) -> dict:
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'{ann_file} does not exist; write it with python '
                f'tools/dataset_converters/yaml_to_coco.py LABELED_DIR SPLIT '
                f'{ann_file}')
        with open(ann_file) as f:
            coco = json.load(f)
        missing = [k for k in ('images', 'annotations', 'categories')
                   if k not in coco]
        if missing:
            raise ValueError(f'{ann_file}: not a COCO json (no {missing}); '
                             f'write it with yaml_to_coco.py')
        return coco

    @staticmethod
    def _padded_box(bbox: Sequence[float], margin: float, width: int,
                    height: int) -> Tuple[int, int, int, int]:
        x, y, w, h = bbox  # COCO xywh
        x0 = int(np.floor(max(0.0, x - margin * w)))
        y0 = int(np.floor(max(0.0, y - margin * h)))
        x1 = int(np.ceil(min(float(width), x + w + margin * w)))
        y1 = int(np.ceil(min(float(height), y + h + margin * h)))
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load(self, indices: Sequence[int]) -> torch.Tensor:
        """Decode the crops ``indices``: uint8 ``(n, 3, size, size)`` RGB.

        Each image is decoded once for all of its crops.
        """
        out = torch.empty(len(indices), 3, self.size, self.size,
                          dtype=torch.uint8)
        by_file = defaultdict(list)
        for pos, i in enumerate(indices):
            by_file[self.files[i]].append((pos, i))
        for path, items in by_file.items():
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(
                    f'{self.ann_file}: image {path} is missing or '
                    f'unreadable; check the img_dir ({self.img_dir})')
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            for pos, i in items:
                x0, y0, x1, y1 = self.boxes[i]
                crop = img[y0:y1, x0:x1]
                interp = cv2.INTER_AREA if min(crop.shape[:2]) > self.size \
                    else cv2.INTER_LINEAR
                crop = cv2.resize(crop, (self.size, self.size),
                                  interpolation=interp)
                out[pos] = torch.from_numpy(crop).permute(2, 0, 1)
        return out
