"""Data and checkpoint generators for the detection tests (all in tmp dirs)."""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from projects.detection.datasets import CLASSES

DEMO_CONFIG = ('configs/faster_rcnn/'
               'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')


def write_image(path: str, width: int, height: int,
                boxes: Sequence[Sequence[float]] = (), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    draw = ImageDraw.Draw(img)
    for i, b in enumerate(boxes):
        color = tuple(int(c) for c in rng.integers(120, 255, 3))
        draw.rectangle([b[0], b[1], b[2] - 1, b[3] - 1], fill=color)
    os.makedirs(osp.dirname(path), exist_ok=True)
    img.save(path, format='JPEG', quality=90)


def yaml_text(bboxes, labels, image_size) -> str:
    """A label file in the competition's format (flow lists)."""
    lines = ['bboxes:']
    lines += [f'- [{", ".join(str(v) for v in b)}]' for b in bboxes]
    if not bboxes:
        lines[0] = 'bboxes: []'
    lines.append(f'image_size: [{image_size[0]}, {image_size[1]}]')
    lines.append(f'labels: [{", ".join(labels)}]')
    return '\n'.join(lines) + '\n'


def write_item(root: str, split: str, n: int, width: int, height: int,
               bboxes: List[List[float]], labels: List[str],
               image_size: Optional[Sequence[int]] = None,
               label_text: Optional[str] = None, image: bool = True,
               label: bool = True) -> None:
    split_dir = osp.join(root, split)
    if image:
        write_image(osp.join(split_dir, 'images', f'{n}.JPEG'), width,
                    height, [b for b in bboxes if _numeric_box(b)], seed=n)
    if label:
        os.makedirs(osp.join(split_dir, 'labels'), exist_ok=True)
        if label_text is None:
            label_text = yaml_text(bboxes, labels,
                                   image_size or (width, height))
        with open(osp.join(split_dir, 'labels', f'{n}.yml'), 'w') as f:
            f.write(label_text)


def _numeric_box(b) -> bool:
    return (isinstance(b, (list, tuple)) and len(b) == 4
            and all(isinstance(v, (int, float)) for v in b)
            and b[2] > b[0] and b[3] > b[1])


def random_boxes(rng: random.Random, width: int, height: int, k: int,
                 min_size: int = 12) -> List[List[int]]:
    boxes = []
    for _ in range(k):
        w = rng.randint(min_size, max(min_size, width // 2))
        h = rng.randint(min_size, max(min_size, height // 2))
        x = rng.randint(0, width - w)
        y = rng.randint(0, height - h)
        boxes.append([x, y, x + w, y + h])
    return boxes


def make_split(root: str, split: str, numbers: Sequence[int],
               classes: Sequence[str] = CLASSES[:5], size=(128, 192),
               max_boxes: int = 3, seed: int = 0) -> Dict[int, dict]:
    """Clean images + labels; returns {n: dict(bboxes, labels, size)}."""
    rng = random.Random(seed)
    items = {}
    for n in numbers:
        w, h = rng.randint(*size), rng.randint(*size)
        k = rng.randint(1, max_boxes)
        boxes = random_boxes(rng, w, h, k)
        labels = [rng.choice(list(classes)) for _ in range(k)]
        write_item(root, split, n, w, h, boxes, labels)
        items[n] = dict(bboxes=boxes, labels=labels, size=(w, h))
    return items


def make_converted_splits(root: str, size: Sequence[int]) -> None:
    """The small labeled set the detector tests share: training images 1-4
    and validation images 30001-30003 of three classes (class 0 among them),
    at most two boxes each, converted to COCO jsons in root/annotations."""
    from projects.detection.converters import convert_to_file
    classes = ['cup or mug', 'dog', 'starfish']
    make_split(root, 'training', range(1, 5), classes, seed=1, size=size,
               max_boxes=2)
    make_split(root, 'validation', range(30001, 30004), classes, seed=2,
               size=size, max_boxes=2)
    for split in ('training', 'validation'):
        convert_to_file(root, split,
                        osp.join(root, 'annotations', f'{split}.json'),
                        strict=True, workers=0)


def _randomize(state: Dict[str, torch.Tensor],
               seed: int = 0) -> Dict[str, torch.Tensor]:
    """Distinct values everywhere (fresh BN params equal mmdet's defaults)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g).abs() + 0.1 \
                if 'running_var' in k else torch.randn(v.shape, generator=g)
        else:
            out[k] = torch.full_like(v, 7)
    return out


def fake_vicreg_checkpoint(path: str, depth: int = 18,
                           seed: int = 0) -> Dict[str, torch.Tensor]:
    """An MMPretrain (VICReg-style) runner checkpoint: keys 'backbone.*'
    plus a projector; returns the backbone tensors (unprefixed)."""
    from mmpretrain.models import ResNet
    backbone = _randomize(ResNet(depth=depth).state_dict(), seed)
    state = {'backbone.' + k: v for k, v in backbone.items()}
    state['neck.mlp.0.weight'] = torch.randn(16, 512)
    torch.save(
        {'state_dict': state,
         'meta': {'epoch': 1, 'iter': 10, 'mmpretrain_version': '1.2.0'}},
        path)
    return backbone


def torchvision_checkpoint(path: str, seed: int = 1
                           ) -> Dict[str, torch.Tensor]:
    """A torchvision-layout ResNet-18 file (plain state dict, with fc)."""
    import torchvision
    state = _randomize(torchvision.models.resnet18().state_dict(), seed)
    torch.save(state, path)
    return state
