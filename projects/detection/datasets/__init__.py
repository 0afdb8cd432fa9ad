from .competition_dataset import CLASSES, CompetitionDataset
from .unlabeled_det_dataset import UnlabeledDetDataset

__all__ = ['CLASSES', 'CompetitionDataset', 'UnlabeledDetDataset']
