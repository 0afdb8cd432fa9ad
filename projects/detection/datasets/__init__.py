from .competition import (CATEGORIES, CLASSES, ConversionError, convert_split,
                          convert_to_file)
from .unlabeled_det_dataset import UnlabeledDetDataset

__all__ = [
    'CATEGORIES', 'CLASSES', 'ConversionError', 'convert_split',
    'convert_to_file', 'UnlabeledDetDataset'
]
