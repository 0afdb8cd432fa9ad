"""Fast checks of PreemptionHook and ExactResumeTrainLoop's pieces (a toy
mmengine Runner in this process; the end-to-end runs are in
test_exact_resume.py and tests/tools/test_slurm_time_limit.py)."""
import os
import os.path as osp
import pickle
import random
import signal

import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.builder import TRANSFORMS
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from projects.engine.loops.exact_resume_loop import (SeededBatch,
                                                     SeededBatchSampler,
                                                     derive_seed)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, mode='loss'):
        x = inputs
        # a random term: the main process's generator matters
        out = self.linear(x + 0.01 * torch.randn_like(x))
        return {'loss': out.pow(2).mean()}


class NoisyData(Dataset):
    """Each sample draws from NumPy: the view generator."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), float(np.random.rand())]))


class SendSignal(Hook):

    def __init__(self, at, signum):
        self.at, self.signum = at, signum

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)


def _runner(work_dir, hooks=(), loop='ExactResumeTrainLoop', resume=False,
            dataset=None, workers=0):
    """Not mmengine's ``RunnerTestCase``: these tests need a model with a
    random term and data drawn from NumPy (what exact resume restores),
    which its toy model and dataset lack, and pytest's tmp_path,
    monkeypatch and parametrize, which a unittest.TestCase cannot take."""
    import projects.engine  # noqa: F401  (registers hook and loop)
    torch.manual_seed(0)  # the model is built here, before Runner seeds
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset or NoisyData(), batch_size=3,
            num_workers=workers, persistent_workers=workers > 0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1,
                                          momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[2],
                             by_epoch=True),
        train_cfg=dict(type=loop, max_epochs=3),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=100),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='PreemptionHook'), *hooks],
        randomness=dict(seed=3), resume=resume,
        experiment_name=f'toy-{osp.basename(str(work_dir))}-'
                        f'{random.random()}')


def _weights(runner):
    return [p.detach().clone() for p in runner.model.parameters()]


def test_signal_checkpoints_and_resume_is_exact(tmp_path, monkeypatch):
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    ref = _runner(tmp_path / 'ref')
    ref.train()
    want = _weights(ref)

    work = tmp_path / 'run'
    stopped = _runner(work, [SendSignal(5, signal.SIGUSR1)])
    with pytest.raises(SystemExit) as exc:
        stopped.train()
    assert exc.value.code == 0
    assert (work / 'last_checkpoint').read_text().endswith('iter_5.pth')
    assert (work / 'resume_requested').is_file()  # no Slurm: marker
    # handlers of the test process are back after the run? (SystemExit:
    # not restored by after_train, so put them back here)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    resumed = _runner(work, resume=True)
    resumed.train()
    assert not (work / 'resume_requested').exists()
    assert all(torch.equal(a, b) for a, b in zip(want, _weights(resumed)))


def test_plain_loop_resume_differs(tmp_path, monkeypatch):
    """Negative control: mmengine's EpochBasedTrainLoop replays the epoch."""
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    ref = _runner(tmp_path / 'ref', loop='EpochBasedTrainLoop')
    ref.train()
    work = tmp_path / 'run'
    stopped = _runner(work, [SendSignal(5, signal.SIGTERM)],
                      loop='EpochBasedTrainLoop')
    with pytest.raises(SystemExit):
        stopped.train()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert not (work / 'resume_requested').exists()  # TERM: no requeue
    resumed = _runner(work, loop='EpochBasedTrainLoop', resume=True)
    resumed.train()
    assert not all(torch.equal(a, b)
                   for a, b in zip(_weights(ref), _weights(resumed)))


def test_requeue_on_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'scontrol.log'
    (bin_dir / 'scontrol').write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / 'scontrol').chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    monkeypatch.setenv('SLURM_JOB_ID', '4242')
    work = tmp_path / 'run'
    runner = _runner(work, [SendSignal(2, signal.SIGUSR1)])
    with pytest.raises(SystemExit):
        runner.train()
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    assert log.read_text().split() == ['requeue', '4242']
    assert not (work / 'resume_requested').exists()


def test_batch_sampler_skip_and_seeds():
    class Loop:
        seed, epoch = 7, 2

    inner = [[0, 1], [2, 3], [4, 5]]
    sampler = SeededBatchSampler(inner, Loop())
    full = list(sampler)
    assert [list(b) for b in full] == inner and len(sampler) == 3
    sampler.skip = 2
    rest = list(sampler)
    assert [list(b) for b in rest] == [[4, 5]]
    assert rest[0].seed == full[2].seed  # seed follows the position
    assert list(sampler) == full  # skip applies once
    assert len({b.seed for b in full}) == 3
    Loop.epoch = 3
    assert [b.seed for b in SeededBatchSampler(inner, Loop())] != \
        [b.seed for b in full]  # differs from epoch to epoch
    assert derive_seed(1, 2) != derive_seed(2, 1)


def test_seeded_batch_seeds_the_process_that_builds_it():
    """Iterating a batch (what the DataLoader's fetcher does) seeds the
    generators; pickling it for a worker does not."""
    data = NoisyData()

    def build(batch):
        return [float(data[i]['inputs'][1]) for i in batch]

    batch = SeededBatch([1, 2], seed=5)
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    sent = pickle.loads(pickle.dumps(batch))
    assert np.array_equal(np.random.get_state()[1], state)
    assert type(sent) is SeededBatch and sent == [1, 2] and sent.seed == 5
    assert build(batch) == build(sent) != build(SeededBatch([1, 2], 6))


def test_resume_with_other_batch_size_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    work = tmp_path / 'run'
    stopped = _runner(work, [SendSignal(2, signal.SIGTERM)])
    with pytest.raises(SystemExit):
        stopped.train()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    resumed = _runner(work, resume=True)
    resumed.train_loop  # build, then pretend an epoch is shorter
    resumed.train_loop._iter, resumed.train_loop._epoch = 9, 0
    with pytest.raises(ValueError, match='an epoch now has 4 iterations'):
        resumed.train_loop._position_in_epoch()


def test_sigint_leaves_a_resumable_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    work = tmp_path / 'run'
    runner = _runner(work, [SendSignal(3, signal.SIGINT)])
    try:
        with pytest.raises(SystemExit) as exc:  # not KeyboardInterrupt
            runner.train()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert exc.value.code == 0
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(
        (work / 'last_checkpoint').read_text())
    assert ckpt['meta']['iter'] == 3 and ckpt['meta']['epoch'] == 0
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)


def test_every_training_config_survives_time_limits():
    """Each config keeps PreemptionHook, ExactResumeTrainLoop and a
    distributed timeout shorter than PyTorch's 30 minutes. The Soft Teacher
    configs train by iterations (mmdet's IterBasedTrainLoop): they keep the
    hook and the timeout, and resume without the exact-resume guarantee."""
    import glob

    from mmengine.config import Config
    from process_helpers import ROOT as root
    missing = []
    for path in sorted(glob.glob(osp.join(root, 'configs', '*', '*.py'))):
        cfg = Config.fromfile(path)
        hooks = [h.get('type') for h in cfg.get('custom_hooks', [])]
        timeout = cfg.env_cfg.get('dist_cfg', {}).get('timeout')
        loop = ('IterBasedTrainLoop' if '/soft_teacher/' in path else
                'ExactResumeTrainLoop')
        if 'PreemptionHook' not in hooks or \
                cfg.train_cfg.get('type') != loop or \
                not timeout or timeout >= 1800:
            missing.append(osp.relpath(path, root))
    assert missing == []


# ------------------------------------------- dataset hooks under the loop
class PipelineData(Dataset):
    """Samples go through ``self.pipeline``, as mmengine datasets do."""

    def __init__(self):
        from mmcv.transforms import Compose
        self.pipeline = Compose([])

    def __len__(self):
        return 12

    def __getitem__(self, i):
        x = torch.tensor([float(i), float(np.random.rand())])
        return self.pipeline(dict(inputs=x))


@TRANSFORMS.register_module(force=True)
class NegateInputs(BaseTransform):
    """The augmentation switched to: every input negative."""

    def transform(self, results):
        results['inputs'] = -results['inputs'] - 1
        return results


class RecordInputs(Hook):
    """Keeps the first input column of every batch, per epoch."""

    def __init__(self):
        self.seen = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen.setdefault(runner.epoch, []).append(
            data_batch['inputs'][:, 0].clone())


def _switch_runner(work_dir, loop, dataset, hooks=(), **kwargs):
    from mmdet.engine.hooks import PipelineSwitchHook
    switch = PipelineSwitchHook(switch_epoch=1,
                                switch_pipeline=[dict(type='NegateInputs')])
    return _runner(work_dir, [switch, *hooks], loop=loop, dataset=dataset,
                   **kwargs)


@pytest.mark.parametrize('workers', [0, 1])
def test_pipeline_switch_reaches_the_dataset(tmp_path, workers):
    """mmdet's PipelineSwitchHook changes the augmentation under
    ExactResumeTrainLoop as under EpochBasedTrainLoop (also in persistent
    workers), and the loader's dataset is the user's object."""
    for loop in ('EpochBasedTrainLoop', 'ExactResumeTrainLoop'):
        record = RecordInputs()
        runner = _switch_runner(tmp_path / loop, loop, PipelineData(),
                                [record], workers=workers)
        dataset = runner.train_dataloader.dataset
        assert type(dataset) is PipelineData, loop  # no wrapper layer
        runner.train()
        assert runner.train_dataloader.dataset is dataset
        assert isinstance(dataset.pipeline.transforms[0], NegateInputs)
        negative = {e: [bool((x < 0).all()) for x in xs]
                    for e, xs in record.seen.items()}
        assert negative == {0: [False] * 4, 1: [True] * 4, 2: [True] * 4}, \
            loop


def test_pipeline_switch_resume_is_exact(tmp_path, monkeypatch):
    """Stopped in the epoch after the switch and resumed: same weights as
    the uninterrupted run."""
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    loop = 'ExactResumeTrainLoop'
    ref = _switch_runner(tmp_path / 'ref', loop, PipelineData())
    ref.train()
    work = tmp_path / 'run'
    stopped = _switch_runner(work, loop, PipelineData(),
                             [SendSignal(6, signal.SIGTERM)])
    with pytest.raises(SystemExit):
        stopped.train()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    resumed = _switch_runner(work, loop, PipelineData(), resume=True)
    resumed.train()
    assert all(torch.equal(a, b)
               for a, b in zip(_weights(ref), _weights(resumed)))
