from .competition import (CATEGORIES, CLASSES, AnnotationConversionError,
                          convert_split, convert_to_file)
from .competition_dataset import CompetitionDataset
from .unlabeled_det_dataset import UnlabeledDetDataset

__all__ = [
    'CATEGORIES', 'CLASSES', 'AnnotationConversionError', 'convert_split',
    'convert_to_file', 'CompetitionDataset', 'UnlabeledDetDataset'
]
