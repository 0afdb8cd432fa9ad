"""Slurm time limits on a live cluster (markers slurm, slow): the
templates' and ``tools/slurm_train.sh``'s jobs are warned before the limit,
checkpoint, are requeued or restarted and end with the weights of an
uninterrupted run. Cluster and partition as in test_slurm_cluster.py.
"""
import os
import os.path as osp
import subprocess

import pytest
from process_helpers import ROOT, free_port

SLURM_DIR = osp.join(ROOT, 'tools', 'slurm')


# --------------------------------------------------------------------------
# time limits: a 2-minute limit with a USR1 warning 40 s before
# it; the job checkpoints, is requeued (sbatch) or restarted
# (slurm_train.sh), and ends with the weights of an uninterrupted 2-process
# run, bit for bit. 2 minutes, not 1: a loaded machine took 20-60 s to start
# a run, so with 1 minute every requeued run was warned while starting, did
# one iteration and was requeued again
# --------------------------------------------------------------------------
VICREG_DEMO = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
DET_DEMO = osp.join(ROOT, 'configs/faster_rcnn/'
                    'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')


TESTS = osp.join(ROOT, 'tests')


def _held(config, tmp_path):
    """``config`` plus tests/slurm_hold_hook.py's HoldUntilWarnedHook: the
    job's first run waits at its third iteration for the time-limit
    warning, so the warning lands mid-training on any machine (a training
    sized to outlast Slurm's first check still ended before it in CI)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    imports = list(cfg.custom_imports['imports']) + ['slurm_hold_hook']
    hooks = [dict(h) for h in cfg.custom_hooks]
    hooks.append(dict(type='HoldUntilWarnedHook', at_iter=2))
    held = tmp_path / osp.basename(config)
    held.write_text(
        f'_base_ = [{config!r}]\n'
        f'custom_imports = dict(imports={imports!r}, '
        f'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return str(held)


def _job_env(**env):
    """The environment of a time-limited job: the hold is on, and the hook's
    module importable."""
    return dict(os.environ, OMP_NUM_THREADS='1', SLURM_TEST_HOLD='1',
                PYTHONPATH=os.pathsep.join(
                    [TESTS] + [p for p in [os.environ.get('PYTHONPATH')]
                               if p]), **env)


def _reference_run(config, work_dir, args):
    """The same training, uninterrupted: 2 gloo processes (torchrun)."""
    env = _job_env(PORT=str(free_port()))
    env.pop('SLURM_TEST_HOLD')
    res = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
         '--work-dir', str(work_dir), *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]


def _wait_for_job(job_id, timeout):
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        res = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T'],
                             capture_output=True, text=True, timeout=30)
        state = res.stdout.strip()
        if res.returncode != 0 or state in ('', 'COMPLETED', 'FAILED',
                                            'TIMEOUT', 'CANCELLED',
                                            'NODE_FAIL', 'OUT_OF_MEMORY'):
            return state
        time.sleep(5)
    subprocess.run(['scancel', job_id], timeout=30)
    pytest.fail(f'job {job_id} did not finish in {timeout} s')


def _sbatch_until_done(template, partition, env, tmp_path, work, epochs):
    """Submit ``template`` as a 2-minute, 2-task CPU job (the template asks
    for GPUs and 48 h) warned with USR1 40 s before the limit; wait for the
    end; check that the training requeued the job at least once and that
    the final weights equal the reference run's (``tmp_path / 'ref'``)."""
    from resume_helpers import assert_same, final_state
    res = subprocess.run(
        ['sbatch', '-p', partition, '--time=2', '--signal=B:USR1@40',
         '--gres=none', '--ntasks-per-node=2', '--cpus-per-task=1',
         '--mem=3G', f'--output={tmp_path}/job-%j.out', '--parsable',
         osp.join(SLURM_DIR, template)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    job_id = res.stdout.strip().split(';')[0]
    state = _wait_for_job(job_id, 1800)
    out = open(tmp_path / f'job-{job_id}.out').read()
    restarts = [int(line.split()[-1]) for line in out.splitlines()
                if line.startswith(f'job {job_id}, restart ')]
    print(f'job {job_id}: final state {state!r}, runs: {len(restarts)}, '
          f'requeued by the training: {out.count("requeued Slurm job")}')
    assert max(restarts) >= 1, out[-4000:]  # requeued at least once
    assert 'requeued Slurm job' in out, out[-4000:]
    assert (work / f'epoch_{epochs}.pth').is_file(), out[-4000:]
    assert_same(final_state(tmp_path / 'ref', epochs),
                final_state(work, epochs))


def _vicreg_opts(tmp_path, epochs):
    from projects.vicreg.demo_data import write_demo_folder
    write_demo_folder(str(tmp_path / 'data'), num=16, size=40)
    return [f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}',
            'train_dataloader.num_workers=1',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100',
            'randomness.seed=0', f'train_cfg.max_epochs={epochs}']


@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_time_limit_requeues_and_resumes_exactly(partition,
                                                        tmp_path):
    # 16 images, global batch 8: 2 iterations per epoch, 16 in all. Slurm
    # sends the warning at one of its checks of the job
    # (every 30 s; it may come up to 60 s early); the first run holds at its
    # third iteration until it comes (_held), checkpoints after that
    # iteration and requeues; a requeued job waits about 2 minutes (Slurm's
    # requeue delay) before it runs again, resumes and goes on (warned and
    # requeued again if the machine is slow).
    epochs = 8
    opts = _vicreg_opts(tmp_path, epochs)
    data = tmp_path / 'data'
    config = _held(VICREG_DEMO, tmp_path)
    _reference_run(config, tmp_path / 'ref', [
        '--cfg-options', f'train_dataloader.dataset.data_root={data}',
        'train_dataloader.batch_size=4', *opts])

    work = tmp_path / 'work'
    env = _job_env(ROOT=ROOT, CONFIG=config, WORK_DIR=str(work),
                   DATA_ROOT=str(data), GLOBAL_BATCH='8',
                   CFG_OPTIONS=' '.join(opts))
    _sbatch_until_done('pretrain.sbatch', partition, env, tmp_path, work,
                       epochs)


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_train_time_limit_restarts_detector_exactly(partition,
                                                          tmp_path):
    from det_helpers import make_split
    from resume_helpers import assert_same, final_state

    from projects.detection.converters import convert_to_file
    root = tmp_path / 'labeled'
    make_split(str(root), 'training', range(1, 9), size=(64, 96), seed=3)
    convert_to_file(str(root), 'training',
                    str(root / 'annotations/training.json'), workers=0)
    # 8 images, 2 per rank: 2 iterations per epoch; the first run holds at
    # its third iteration for the warning (_held)
    epochs = 4
    config = _held(DET_DEMO, tmp_path)
    args = ['--no-validate', '--cfg-options',
            f'train_dataloader.dataset.data_root={root}/',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=1',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100',
            'default_hooks.checkpoint.save_best=None',
            'randomness.seed=0', f'train_cfg.max_epochs={epochs}']
    _reference_run(config, tmp_path / 'ref', args)

    work = tmp_path / 'work'
    job = f'det-limit-{os.getpid()}'
    env = _job_env(GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1',
                   MASTER_PORT=str(free_port()), SRUN_ARGS='--time=2',
                   SIGNAL_SECONDS='40')
    try:
        res = subprocess.run(
            [osp.join(ROOT, 'tools', 'slurm_train.sh'), partition, job,
             config, str(work), *args], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        subprocess.run(['scancel', '--name', job], timeout=30)
        pytest.fail('slurm_train.sh did not finish in 30 min')
    out = res.stdout + res.stderr
    restarts = sum(line == 'stopped before the time limit; resuming in a '
                   'new job' for line in res.stdout.splitlines())  # not set -x
    print(f'slurm_train.sh: exit {res.returncode}, restarts {restarts}')
    print(''.join(line[:160] + '\n' for line in out.splitlines()
                  if any(k in line for k in (
                      'received: saving', 'resumed epoch', 'not requeued',
                      'resuming in a new job', 'srun: error'))))
    assert res.returncode == 0, out[-4000:]
    assert restarts >= 1, out[-4000:]
    assert_same(final_state(tmp_path / 'ref', epochs),
                final_state(work, epochs))


@pytest.mark.slurm
@pytest.mark.slow
def test_finetune_sbatch_time_limit_requeues_and_resumes_exactly(
        partition, tmp_path):
    """finetune.sbatch, 2 tasks, 2-minute limit: requeued, resumed, final
    detector weights equal an uninterrupted run's."""
    from det_helpers import fake_vicreg_checkpoint, make_split

    from projects.detection.converters import convert_to_file
    config = osp.join(ROOT, 'configs/faster_rcnn/'
                      'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-'
                      'demo.py')
    data = tmp_path / 'labeled'
    for split, numbers in (('training', range(1, 5)),
                           ('validation', range(5, 7))):
        make_split(str(data), split, numbers, size=(64, 96), seed=3)
        convert_to_file(str(data), split,
                        str(data / f'annotations/{split}.json'), workers=0)
    ckpt = tmp_path / 'vicreg.pth'
    fake_vicreg_checkpoint(str(ckpt))
    # 4 images, 1 per rank: 2 iterations per epoch; the first run holds at
    # its third iteration for the warning (_held)
    epochs = 4
    config = _held(config, tmp_path)
    opts = ['train_dataloader.batch_size=1',
            'train_dataloader.num_workers=1',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=100',
            'default_hooks.checkpoint.save_best=None',
            'randomness.seed=0', f'train_cfg.max_epochs={epochs}']
    _reference_run(config, tmp_path / 'ref', [
        '--no-validate', '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={ckpt}',
        f'train_dataloader.dataset.data_root={data}/', *opts])

    work = tmp_path / 'work'
    env = _job_env(ROOT=ROOT, CONFIG=config, WORK_DIR=str(work),
                   DATA_ROOT=str(data), PRETRAIN_CKPT=str(ckpt),
                   EXTRA_ARGS='--no-validate', CFG_OPTIONS=' '.join(opts))
    _sbatch_until_done('finetune.sbatch', partition, env, tmp_path, work,
                       epochs)
