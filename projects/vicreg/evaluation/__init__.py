"""Evaluation of a backbone while or after it pretrains: the object-crop
kNN probe (:class:`ObjectCropKNN`, used by ``ObjectCropKNNHook`` and
``tools/analysis_tools/knn_eval.py``)."""
from .object_crop_knn import ObjectCropKNN, autocast_dtype, pooled_features
from .object_crops import ObjectCrops
from .weighted_knn import knn_accuracy, top_n_correct, weighted_knn_scores

__all__ = [
    'ObjectCropKNN', 'ObjectCrops', 'autocast_dtype', 'knn_accuracy',
    'pooled_features', 'top_n_correct', 'weighted_knn_scores'
]
