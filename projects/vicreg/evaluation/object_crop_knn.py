"""kNN probe of a backbone on the object crops of the labeled splits.

SSL frameworks watch representation quality during pretraining with a kNN
classifier (solo-learn, lightly; Wu et al. CVPR 2018, DINO's protocol).
Here the labeled data are detection boxes, so the probe classifies the
validation split's object crops by the training split's object crops.
:class:`ObjectCropKNNHook` and ``tools/analysis_tools/knn_eval.py`` both
call :meth:`ObjectCropKNN.evaluate`, so their numbers are the same.
"""
import math
import os.path as osp
import time
from contextlib import nullcontext
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_dist_info

from .object_crops import ObjectCrops
from .weighted_knn import knn_accuracy, top_n_correct, weighted_knn_scores

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, as the VICReg configs
IMAGENET_STD = (58.395, 57.12, 57.375)


def pooled_features(backbone: torch.nn.Module,
                    images: torch.Tensor) -> torch.Tensor:
    """Global-average-pooled, L2-normalised last-stage features (float32)."""
    out = backbone(images)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.dim() == 4:
        out = out.mean(dim=(2, 3))
    return F.normalize(out.float(), dim=1)


def autocast_dtype(amp: bool, device: torch.device,
                   cast_dtype: Optional[torch.dtype] = None
                   ) -> Optional[torch.dtype]:
    """The autocast dtype of a run that uses AMP (``None`` without AMP):
    its ``cast_dtype`` or fp16, bf16 on a CPU (no fp16 autocast there)."""
    if not amp:
        return None
    if device.type == 'cpu':
        return torch.bfloat16
    return cast_dtype or torch.float16


class ObjectCropKNN:
    """Weighted kNN (``k``, cosine, temperature) on object-crop features.

    Each rank decodes and embeds its shard ``rank::world_size`` of both
    crop sets; the features are all-gathered back into the global order, so
    the result does not depend on the number of processes. Decoded crops
    are kept (uint8) after the first call: they are built once per run.

    Args:
        data_root: labeled data folder in the converter's layout:
            ``annotations/{split}.json`` and ``{split}/images/``.
        train_split: split whose crops are the kNN bank.
        val_split: split whose crops are classified.
        crop_size: crop side, the pretraining resolution.
        margin: context around each box, fraction of the box side.
        max_train_per_class, max_val_per_class: caps (``None``: all).
        k, temperature: kNN parameters (Wu et al. / DINO: 20, 0.07).
        batch_size: crops per forward pass.
        seed: seed of the per-class draws.
        mean, std: RGB normalisation (the pretraining data preprocessor's).
    """

    def __init__(self, data_root: str, train_split: str = 'training',
                 val_split: str = 'validation', crop_size: int = 224,
                 margin: float = 0.1,
                 max_train_per_class: Optional[int] = 50,
                 max_val_per_class: Optional[int] = 50, k: int = 20,
                 temperature: float = 0.07, batch_size: int = 128,
                 seed: int = 0, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        train_ann, val_ann = (
            osp.join(data_root, 'annotations', f'{split}.json')
            for split in (train_split, val_split))
        self.train = ObjectCrops(train_ann,
                                 osp.join(data_root, train_split, 'images'),
                                 crop_size, margin, max_train_per_class, seed)
        self.val = ObjectCrops(val_ann,
                               osp.join(data_root, val_split, 'images'),
                               crop_size, margin, max_val_per_class, seed + 1)
        if self.train.classes != self.val.classes:
            raise ValueError(f'{train_ann} and {val_ann} list different '
                             f'categories; convert both with yaml_to_coco.py')
        for crops, ann in ((self.train, train_ann), (self.val, val_ann)):
            if len(crops) == 0:
                raise ValueError(f'{ann}: no objects to crop (no '
                                 f'annotations); check the conversion')
        self.k, self.temperature = k, temperature
        self.batch_size = batch_size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self._pixels: Dict[str, torch.Tensor] = {}
        self.timing: Dict[str, float] = {}

    def _local_pixels(self, name: str, crops: ObjectCrops) -> torch.Tensor:
        if name not in self._pixels:  # this rank's shard, decoded once
            rank, world = get_dist_info()
            self._pixels[name] = crops.load(range(rank, len(crops), world))
        return self._pixels[name]

    @torch.no_grad()
    def _embed(self, backbone: torch.nn.Module, pixels: torch.Tensor,
               device: torch.device,
               amp_dtype: Optional[torch.dtype]) -> torch.Tensor:
        feats = []
        for start in range(0, pixels.shape[0], self.batch_size):
            x = pixels[start:start + self.batch_size].to(device).float()
            x = (x - self.mean.to(device)) / self.std.to(device)
            # no autocast object when disabled: torch 2.1 refuses a float32
            # CPU autocast even with enabled=False
            with (torch.autocast(device.type, dtype=amp_dtype)
                  if amp_dtype is not None else nullcontext()):
                feats.append(pooled_features(backbone, x))
        return torch.cat(feats)

    def _features(self, name: str, crops: ObjectCrops,
                  backbone: torch.nn.Module, device: torch.device,
                  amp_dtype: Optional[torch.dtype]) -> torch.Tensor:
        """Features of every crop, in the crop set's order, on every rank."""
        t0 = time.perf_counter()
        pixels = self._local_pixels(name, crops)
        t1 = time.perf_counter()
        _, world = get_dist_info()
        n = len(crops)
        rows = math.ceil(n / world)
        if pixels.shape[0]:
            local = self._embed(backbone, pixels, device, amp_dtype)
        else:  # fewer crops than ranks: only the width is needed
            local = self._embed(backbone, torch.zeros(
                1, 3, crops.size, crops.size, dtype=torch.uint8), device,
                amp_dtype)[:0]
        self.timing[f'{name}_decode_s'] = t1 - t0
        self.timing[f'{name}_embed_s'] = time.perf_counter() - t1
        if world == 1:
            return local
        padded = local.new_zeros(rows, local.shape[1])
        padded[:local.shape[0]] = local
        # rank r holds crops r, r + world, ...: interleave back
        gathered = torch.stack(all_gather(padded), dim=1)
        return gathered.reshape(rows * world, -1)[:n]

    def evaluate(self, backbone: torch.nn.Module,
                 amp_dtype: Optional[torch.dtype] = None) -> Dict[str, float]:
        """``top1``, ``top5``, ``mean_class`` (percent) of ``backbone``.

        The backbone runs in eval mode (restored afterwards) without
        gradients; ``amp_dtype`` runs it under autocast.
        """
        device = next(backbone.parameters()).device
        was_training = backbone.training
        backbone.eval()
        try:
            bank = self._features('train', self.train, backbone, device,
                                  amp_dtype)
            queries = self._features('val', self.val, backbone, device,
                                     amp_dtype)
        finally:
            backbone.train(was_training)
        t0 = time.perf_counter()
        scores = weighted_knn_scores(bank, self.train.labels.to(device),
                                     queries, self.train.num_classes,
                                     self.k, self.temperature)
        metrics = knn_accuracy(scores, self.val.labels)
        # per query, in the crop set's order: for paired tests (McNemar)
        self.last_correct = top_n_correct(scores, self.val.labels).cpu()
        self.timing['knn_s'] = time.perf_counter() - t0
        self.timing['crops'] = len(self.train) + len(self.val)
        return metrics
