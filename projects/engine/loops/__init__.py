from .exact_resume_loop import (ExactResumeTrainLoop, SeededBatch,
                                SeededBatchSampler, derive_seed)

__all__ = [
    'ExactResumeTrainLoop', 'SeededBatch', 'SeededBatchSampler', 'derive_seed'
]
