"""Slurm: a 2-task VICReg run through tools/slurm_train.sh on a live cluster
(markers slurm, slow).

The cluster tests need a running cluster (``tools/setup_local_slurm.sh``
makes a one-node one on this machine) and a small ResNet-18 VICReg config
``configs/vicreg/*resnet18*.py`` (override: env VICREG_SLURM_TEST_CONFIG);
they are skipped, with the reason, when either is missing. Partition: env
SLURM_TEST_PARTITION, else the cluster's default partition (the
``partition`` fixture, tests/tools/conftest.py).
"""
import glob
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
from process_helpers import ROOT, free_port


# --------------------------------------------------------------------------
# live cluster
# --------------------------------------------------------------------------
def _vicreg_r18_config():
    env = os.environ.get('VICREG_SLURM_TEST_CONFIG')
    if env:
        if not osp.isfile(env):
            pytest.fail(f'VICREG_SLURM_TEST_CONFIG={env} does not exist')
        return env
    # the plain demo config: its children add a kNN probe that needs the
    # labeled demo data converted to COCO
    return osp.join(ROOT, 'configs', 'vicreg',
                    'vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')


@pytest.mark.slurm
@pytest.mark.slow
def test_srun_two_tasks(partition):
    res = subprocess.run(['srun', '-p', partition, '-n2', '--time=2',
                          'printenv', 'SLURM_PROCID'],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.split()) == ['0', '1']


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_train_vicreg_two_tasks(partition, tmp_path):
    """2 CPU tasks (gloo) through tools/slurm_train.sh; checks the
    checkpoint (trained by both ranks: half the iterations of one)."""
    import torch
    from mmengine.config import Config

    config = _vicreg_r18_config()
    data = tmp_path / 'demo'
    num_images, batch, tasks = 16, 4, 2
    subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'generate_demo_data.py'),
         '--out', str(data), '--num-unlabeled', str(num_images),
         '--num-train', '1', '--num-val', '1', '--quiet'],
        check=True, timeout=120)

    cfg = Config.fromfile(config)
    opts = [f'train_dataloader.dataset.data_root={data / "unlabeled"}',
            f'train_dataloader.batch_size={batch}',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'default_hooks.logger.interval=1',
            'randomness.seed=0']
    epoch_based = 'max_iters' not in cfg.get('train_cfg', {})
    opts.append('train_cfg.max_epochs=1' if epoch_based
                else 'train_cfg.max_iters=2')
    work_dir = tmp_path / 'work_dir'
    job = f'vicreg-test-{os.getpid()}'
    env = dict(os.environ, GPUS=str(tasks), GPUS_PER_NODE='0',
               CPUS_PER_TASK='1', MASTER_PORT=str(free_port()),
               SRUN_ARGS='--time=10')
    cmd = [osp.join(ROOT, 'tools', 'slurm_train.sh'), partition, job, config,
           str(work_dir), '--cfg-options'] + opts
    try:
        res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=900)
    except subprocess.TimeoutExpired:
        subprocess.run(['scancel', '--name', job], timeout=30)
        pytest.fail('slurm_train.sh did not finish in 15 min')
    out = res.stdout + res.stderr
    hint = ''
    if 'NVIDIA driver' in out or 'device_ids' in out:
        hint = ('\nHINT: mmengine\'s launcher called torch.cuda.set_device '
                'or built DDP with device_ids on a CPU-only machine; see '
                'docs/slurm.md "CPU runs".')
    assert res.returncode == 0, f'{" ".join(cmd)}\n{out[-6000:]}{hint}'
    assert 'Distributed training: True' in out

    last = work_dir / 'last_checkpoint'
    assert last.is_file(), f'no last_checkpoint in {work_dir}: {out[-3000:]}'
    ckpt_path = open(last).read().strip()
    assert osp.isfile(ckpt_path), ckpt_path
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    sd = ckpt['state_dict']
    assert any(k.startswith('backbone.') for k in sd), list(sd)[:5]
    assert all(torch.isfinite(v).all() for v in sd.values()
               if v.is_floating_point())
    if epoch_based:
        assert ckpt['meta']['epoch'] == 1
        # each rank saw num_images / tasks images: proves world size 2
        assert ckpt['meta']['iter'] == math.ceil(num_images / (batch * tasks))
    # the json log has finite losses
    scalars = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    assert scalars, f'no scalars.json under {work_dir}'
    import json
    losses = [json.loads(line)['loss'] for line in open(scalars[0])
              if '"loss"' in line]
    assert losses and all(math.isfinite(v) for v in losses)
