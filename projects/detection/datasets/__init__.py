from .unlabeled_det_dataset import UnlabeledDetDataset

__all__ = ['UnlabeledDetDataset']
