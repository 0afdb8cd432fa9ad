"""Exact resume: a seeded CPU run stopped at a random iteration
(SIGTERM -> PreemptionHook checkpoint, or kill -9 with a checkpoint every
iteration) and resumed ends with the same weights and optimizer state as an
uninterrupted run, bit for bit; with mmengine's plain EpochBasedTrainLoop it
does not (negative control). Both stages, real ``tools/train.py`` processes.
"""
import os.path as osp
import random
import signal
import time

import pytest
import torch
from process_helpers import ROOT
from resume_helpers import Train, assert_same, final_state, max_abs_diff

VICREG = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
DET = osp.join(ROOT, 'configs/faster_rcnn/'
               'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')
pytestmark = pytest.mark.slow


def interrupted(tmp_path, name, base, stops, how):
    """Run, stop after the given iteration counts (SIGTERM, or kill -9),
    resume after each stop, run to the end. Returns the work dir."""
    work = tmp_path / name
    args = base + ['--work-dir', work]
    done = 0
    for k, stop in enumerate(stops):
        run = Train(args + (['--resume'] if k else []))
        run.wait_iters(stop - done)
        if how == 'sigterm':
            run.proc.send_signal(signal.SIGTERM)
            assert run.finish(300) == 0, run.output()[-4000:]
            assert 'SIGTERM received: saving' in run.output()
        else:  # at a random moment of iteration stop + 1
            time.sleep(random.Random(stop).uniform(0, 0.5))
            run.proc.send_signal(signal.SIGKILL)
            run.finish(60)
        last = (work / 'last_checkpoint').read_text().strip()
        from mmengine.runner import CheckpointLoader
        done = CheckpointLoader.load_checkpoint(last)['meta']['iter']
        # kill -9 may land before the checkpoint of iteration `stop`
        assert done >= (stop if how == 'sigterm' else stop - 1) > 0, \
            (done, stop)
    run = Train(args + ['--resume'])
    assert run.finish() == 0, run.output()[-4000:]
    assert f'iter: {done}' in run.output()  # "resumed epoch: E, iter: I"
    return work


@pytest.fixture(scope='module')
def vicreg_args(tmp_path_factory):
    from projects.vicreg.demo_data import write_demo_folder
    tmp = tmp_path_factory.mktemp('vicreg_data')
    write_demo_folder(str(tmp / 'data'), num=12, size=40)
    # 3 epochs x 3 iterations; 1 worker with persistent workers, as the
    # configs train (its generator would run on across epochs)
    return [VICREG, '--cfg-options',
            f'train_dataloader.dataset.data_root={tmp / "data"}',
            f'train_dataloader.dataset.listing_cache={tmp / "cache"}',
            'train_dataloader.batch_size=4',
            'train_dataloader.num_workers=1',
            'train_dataloader.persistent_workers=True',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100',
            'randomness.seed=0', 'train_cfg.max_epochs=3']


def test_vicreg_resume_is_exact(tmp_path, vicreg_args):
    rng = random.Random(15)
    stops = sorted(rng.sample(range(1, 9), 2))  # 2 stops among 9 iterations
    ref = Train(vicreg_args + ['--work-dir', tmp_path / 'ref'])
    assert ref.finish() == 0, ref.output()[-4000:]
    work = interrupted(tmp_path, 'stopped', vicreg_args, stops, 'sigterm')
    print('SIGTERM after iterations', stops)
    assert_same(final_state(tmp_path / 'ref', 3), final_state(work, 3))

    # kill -9 (no warning), with a checkpoint every iteration
    kill_args = vicreg_args + ['default_hooks.checkpoint.by_epoch=False',
                               'default_hooks.checkpoint.interval=1']
    stop = rng.randint(3, 8)
    work = interrupted(tmp_path, 'killed', kill_args, [stop], 'kill')
    print('kill -9 after iteration', stop)
    from mmengine.runner import CheckpointLoader
    last = CheckpointLoader.load_checkpoint(
        (work / 'last_checkpoint').read_text().strip())
    assert last['meta']['iter'] == 9
    ref_final = final_state(tmp_path / 'ref', 3)
    assert all(torch.equal(v, ref_final['state_dict'][k])
               for k, v in last['state_dict'].items())

    # negative control: mmengine's EpochBasedTrainLoop, same stops
    plain = vicreg_args + ['train_cfg.type=EpochBasedTrainLoop']
    ref2 = Train(plain + ['--work-dir', tmp_path / 'ref_plain'])
    assert ref2.finish() == 0, ref2.output()[-4000:]
    work = interrupted(tmp_path, 'stopped_plain', plain, stops[:1],
                       'sigterm')
    a, b = final_state(tmp_path / 'ref_plain', 3), final_state(work, 3)
    diff = max_abs_diff(a, b)
    print(f'plain EpochBasedTrainLoop, SIGTERM after {stops[0]}: max |w '
          f'resumed - w uninterrupted| = {diff:.3g}, iter '
          f'{b["meta"]["iter"]} vs {a["meta"]["iter"]}')
    with pytest.raises(AssertionError):
        assert_same(a, b)


def test_vicreg_workers_do_not_change_the_result(tmp_path, vicreg_args):
    """The views are a function of (seed, rank, epoch, batch): 0 or 2
    workers, persistent or not, give the same weights."""
    runs = {}
    for nw, persistent in ((0, False), (2, False)):
        args = vicreg_args + [f'train_dataloader.num_workers={nw}',
                              f'train_dataloader.persistent_workers='
                              f'{persistent}', 'train_cfg.max_epochs=2']
        run = Train(args + ['--work-dir', tmp_path / f'w{nw}'])
        assert run.finish() == 0, run.output()[-4000:]
        runs[nw] = final_state(tmp_path / f'w{nw}', 2)
    assert_same(runs[0], runs[2])


def test_detector_resume_is_exact(tmp_path):
    from det_helpers import make_split

    from projects.detection.converters import convert_to_file
    root = tmp_path / 'labeled'
    make_split(str(root), 'training', range(1, 9), size=(64, 96), seed=3)
    convert_to_file(str(root), 'training',
                    str(root / 'annotations/training.json'), workers=0)
    args = [DET, '--no-validate', '--cfg-options',
            f'train_dataloader.dataset.data_root={root}/',
            'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=1',
            'train_dataloader.persistent_workers=True',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100',
            'default_hooks.checkpoint.save_best=None',
            'randomness.seed=0', 'train_cfg.max_epochs=2']
    ref = Train(args + ['--work-dir', tmp_path / 'ref'])
    assert ref.finish() == 0, ref.output()[-4000:]
    n = sum('Epoch(train)' in ln for ln in ref.lines)
    stop = random.Random(11).randint(1, n - 2)
    work = interrupted(tmp_path, 'stopped', args, [stop], 'sigterm')
    print(f'detector: SIGTERM after iteration {stop} of {n}')
    assert_same(final_state(tmp_path / 'ref', 2), final_state(work, 2))
