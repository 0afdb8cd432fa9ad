"""MMDetection side of the project: Faster R-CNN fine-tuning on the
competition's detection data from a VICReg-pretrained backbone.

Importing this package (configs do, via ``custom_imports``) registers:

- ``CompetitionDataset`` (mmdet DATASETS): ``CocoDataset`` with the
  competition's 100 classes (their one copy);
- ``CompetitionCocoMetric`` (mmdet METRICS): pycocotools-default COCO bbox
  evaluation with all 12 stats and per-class AP;
- ``PretrainedBackboneCheckHook`` (mmdet HOOKS): stops a run whose backbone
  did not get the pretrained weights;
- ``SyncBNIfCUDA`` (mmdet MODELS): SyncBN with CUDA, BN without;
- ``SyncFreeMaxIoUAssigner`` (mmdet TASK_UTILS): ``MaxIoUAssigner``'s
  result without its per-gt host synchronisations;
- ``CachedAnchorGenerator`` (mmdet TASK_UTILS): ``AnchorGenerator`` that
  builds anchors / valid flags once per shape instead of every step;
- ``BatchedRPNHead`` (mmdet MODELS): ``RPNHead`` pre-selecting proposals
  for the whole batch at once;
- ``UnlabeledDetDataset`` (mmdet DATASETS): an image folder without labels,
  the unlabeled stream of the Soft Teacher configs (configs/soft_teacher/).

:mod:`.converters` converts the YAML labels to COCO jsons
(``tools/dataset_converters/yaml_to_coco.py``).
"""
from .. import compat  # noqa: F401  (torch>=2.6 checkpoint loading first)
from .converters import (CATEGORIES, AnnotationConversionError, convert_split,
                         convert_to_file)
from .datasets import CLASSES, CompetitionDataset, UnlabeledDetDataset
from .engine import (PretrainedBackboneCheckHook, PretrainedLoadError,
                     check_backbone)
from .evaluation import CompetitionCocoMetric, format_summary, write_results
from .models import (BatchedRPNHead, CachedAnchorGenerator, SyncBNIfCUDA,
                     SyncFreeMaxIoUAssigner)

__all__ = [
    'CLASSES', 'CATEGORIES', 'AnnotationConversionError', 'convert_split',
    'convert_to_file',
    'CompetitionCocoMetric', 'format_summary', 'write_results',
    'SyncBNIfCUDA', 'PretrainedBackboneCheckHook', 'PretrainedLoadError',
    'check_backbone', 'SyncFreeMaxIoUAssigner', 'CachedAnchorGenerator',
    'BatchedRPNHead', 'CompetitionDataset', 'UnlabeledDetDataset'
]
