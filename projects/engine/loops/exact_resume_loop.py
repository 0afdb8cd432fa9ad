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
  the epoch) and seeds the generators of the process that builds the batch's
  samples (views) when the DataLoader starts iterating it, so the views do
  not depend on which worker builds them, on the number of workers or on
  their history, and differ from epoch to epoch;
- a run resumed mid-epoch skips the batches of indices already trained (the
  sampler is iterated, no image is loaded) and numbers the remaining batches
  from where it stopped.

The sampler's order is mmengine's ``DefaultSampler`` (seed + epoch) and
mmdet's ``AspectRatioBatchSampler`` is deterministic given it; both are kept.
Only the batch sampler is wrapped: ``loader.dataset`` stays the user's
dataset, so hooks that replace its pipeline (mmdet ``PipelineSwitchHook``,
mmpretrain ``SwitchRecipeHook``) reach it as under ``EpochBasedTrainLoop``.
"""
from typing import Iterator

import numpy as np
from mmengine.dist import get_rank
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, set_random_seed
from torch.utils.data import DataLoader

_MAIN, _DATA = 0, 1  # stream tags, so main and data seeds never coincide


def derive_seed(*counters: int) -> int:
    """A 32-bit seed from non-negative integer counters (SeedSequence)."""
    return int(np.random.SeedSequence(
        [int(c) & 0xFFFFFFFF for c in counters]).generate_state(1)[0])


class SeededBatch(list):
    """A batch of dataset indices with the seed its samples are drawn with
    (a ``list``, so every sampler-agnostic consumer still works).

    The DataLoader's fetcher builds the samples by iterating the batch
    (``[dataset[i] for i in batch]``, or the dataset's ``__getitems__``),
    in the process that builds them; iterating therefore seeds that
    process's generators first. This needs no dataset wrapper. The main
    process (``num_workers=0``) is not put back afterwards: the loop seeds
    it again before every iteration.
    """

    def __init__(self, indices, seed: int) -> None:
        super().__init__(indices)
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        set_random_seed(self.seed)
        return super().__iter__()

    def __reduce__(self):  # sent to the workers through a queue
        # self[:] is a plain list: list(self) would seed this process
        return SeededBatch, (self[:], self.seed)


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


def _rebuild(loader: DataLoader, loop) -> DataLoader:
    """The same DataLoader (same dataset object) over
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
        loader.dataset,
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
        set_random_seed(derive_seed(self.seed, _MAIN, get_rank(),
                                    self._iter))
        super().run_iter(idx, data_batch)
