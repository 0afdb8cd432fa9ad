"""An epoch-based training loop whose resumed runs end where uninterrupted
ones would, bit for bit (CPU, deterministic kernels).

mmengine's ``Runner.resume`` restores the weights, the optimizer (and an
``AmpOptimWrapper``'s loss scaler), the parameter schedulers, the message
hub, the epoch/iteration counters and the seed. It does not restore where the
data and the random numbers were:

- ``EpochBasedTrainLoop`` replays a whole epoch after resuming from an
  iteration checkpoint (it does not skip the batches already trained);
- the Python/NumPy/torch generators of the main process (Faster R-CNN's
  proposal samplers, GPU views) are not in the checkpoint;
- data-loader workers are seeded once (``worker_init_fn``: seed + rank and
  worker id); with ``persistent_workers`` their generators run on across
  epochs, so after a restart every view is drawn differently, and without
  it every epoch repeats the first epoch's random numbers.

:class:`ExactResumeTrainLoop` removes the need to store any of that state by
deriving every random stream from counters the checkpoint already has
(``numpy.random.SeedSequence`` of the run's seed and these counters):

- before each iteration the main process's ``random``, ``numpy`` and
  ``torch`` (CPU and CUDA) generators are seeded from (seed, rank,
  iteration);
- each batch of indices carries a seed from (seed, rank, epoch, position in
  the epoch); the dataset wrapper seeds the worker's generators with it
  before building the batch's samples (views), so the views do not depend on
  which worker builds them, on the number of workers or on their history,
  and differ from epoch to epoch;
- a run resumed mid-epoch skips the batches of indices already trained (the
  sampler is iterated, no image is loaded) and numbers the remaining batches
  from where it stopped.

The sampler's order is mmengine's ``DefaultSampler`` (seed + epoch) and
mmdet's ``AspectRatioBatchSampler`` is deterministic given it; both are kept.
"""
import random
from typing import Iterator, List

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader, Dataset, get_worker_info

_MAIN, _DATA = 0, 1  # stream tags, so main and data seeds never coincide


def derive_seed(*counters: int) -> int:
    """A 32-bit seed from non-negative integer counters (SeedSequence)."""
    return int(np.random.SeedSequence(
        [int(c) & 0xFFFFFFFF for c in counters]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also every CUDA device


class SeededBatch(list):
    """A batch of dataset indices with the seed its samples are drawn
    with (a ``list``, so every sampler-agnostic consumer still works)."""

    def __init__(self, indices, seed: int) -> None:
        super().__init__(indices)
        self.seed = seed

    def __reduce__(self):  # sent to the workers through a queue
        return SeededBatch, (list(self), self.seed)


class SeededBatchSampler:
    """Wraps a batch sampler: tags each batch with its seed and skips the
    first ``skip`` batches of the next epoch (a resumed run)."""

    def __init__(self, batch_sampler, loop: 'ExactResumeTrainLoop') -> None:
        self.batch_sampler = batch_sampler
        self.loop = loop
        self.skip = 0

    @property
    def sampler(self):  # DistSamplerSeedHook calls sampler.set_epoch
        return self.batch_sampler.sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[SeededBatch]:
        skip, self.skip = self.skip, 0
        seed = self.loop.seed
        rank, epoch = get_rank(), self.loop.epoch
        for pos, batch in enumerate(self.batch_sampler):
            if pos >= skip:
                yield SeededBatch(batch,
                                  derive_seed(seed, _DATA, rank, epoch, pos))


class SeededDataset(Dataset):
    """Builds each batch's samples with the batch's generators seeded.

    In a worker the worker's generators are re-seeded; in the main process
    (``num_workers=0``) their state is put back afterwards, so data loading
    never shifts the model's random numbers. Attribute reads fall through to
    the wrapped dataset (``metainfo``, ...)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx):
        return self.dataset[idx]

    def __getitems__(self, batch: List[int]) -> list:
        seed = getattr(batch, 'seed', None)
        if seed is None:
            return [self.dataset[i] for i in batch]
        saved = None if get_worker_info() is not None else (
            random.getstate(), np.random.get_state(), torch.get_rng_state())
        seed_everything(seed)
        try:
            return [self.dataset[i] for i in batch]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])

    def __getattr__(self, name):
        if name == 'dataset':  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _rebuild(loader: DataLoader, loop) -> DataLoader:
    """The same DataLoader over :class:`SeededDataset` and
    :class:`SeededBatchSampler` (public constructor arguments only)."""
    if loader.batch_sampler is None:
        raise ValueError('ExactResumeTrainLoop needs a batched train '
                         'dataloader (train_dataloader.batch_size or '
                         'batch_sampler); got batch_size=None')
    kwargs = dict(
        num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device)
    if loader.num_workers > 0:
        kwargs['prefetch_factor'] = loader.prefetch_factor
    if hasattr(loader, 'in_order'):
        kwargs['in_order'] = loader.in_order
    return DataLoader(
        SeededDataset(loader.dataset),
        batch_sampler=SeededBatchSampler(loader.batch_sampler, loop),
        **kwargs)


@LOOPS.register_module()
class ExactResumeTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with exact (bit-for-bit) resumption, also
    from a checkpoint written in the middle of an epoch (see the module
    docstring). Same arguments; ``train_cfg = dict(type=
    'ExactResumeTrainLoop', max_epochs=...)`` with ``projects.engine`` in
    ``custom_imports``.

    What is exact: the batches (indices and views), every random number of
    the main process and of the workers, the optimizer, scheduler and loss
    scaler state. What is not controlled here: non-deterministic kernels
    (cuDNN autotuning, atomics in some CUDA backward passes; set
    ``randomness.deterministic=True`` for those) and a change of the data,
    the batch size or the number of ranks between the runs.
    """

    def __init__(self, runner, dataloader, max_epochs: int,
                 by_epoch: bool = True, **kwargs) -> None:
        if not by_epoch:
            raise ValueError('ExactResumeTrainLoop is epoch based; remove '
                             'train_cfg.by_epoch=False')
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        self.dataloader = _rebuild(self.dataloader, self)

    @property
    def seed(self) -> int:
        seed = self.runner.seed  # after a resume: the checkpoint's seed
        return 0 if seed is None else int(seed)

    def _position_in_epoch(self) -> int:
        n = len(self.dataloader)
        pos = self._iter - self._epoch * n
        if not 0 <= pos <= n:
            raise ValueError(
                f'cannot resume: the checkpoint is at iteration {self._iter}'
                f' of epoch {self._epoch + 1}, but an epoch now has {n} '
                f'iterations (train_dataloader.batch_size, the data or the '
                f'number of ranks changed since it was written); resume '
                f'with the same settings or start a new work_dir')
        return pos

    def run_epoch(self) -> None:
        start = self._position_in_epoch()
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self.dataloader.batch_sampler.skip = start
        for idx, data_batch in enumerate(self.dataloader, start):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch) -> None:
        seed_everything(derive_seed(self.seed, _MAIN, get_rank(),
                                    self._iter))
        super().run_iter(idx, data_batch)
