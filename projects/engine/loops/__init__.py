from .exact_resume_loop import (ExactResumeTrainLoop, SeededBatch,
                                SeededBatchSampler, SeededDataset, derive_seed,
                                seed_everything)

__all__ = [
    'ExactResumeTrainLoop', 'SeededBatch', 'SeededBatchSampler',
    'SeededDataset', 'derive_seed', 'seed_everything'
]
