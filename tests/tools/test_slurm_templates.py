"""Slurm: the sbatch templates, run with bash and stand-ins for ``srun``,
``scancel`` and ``scontrol`` (no cluster needed)."""
import os
import os.path as osp
import signal
import stat
import subprocess

import pytest
from process_helpers import ROOT

SLURM_DIR = osp.join(ROOT, 'tools', 'slurm')
TEMPLATES = ('pretrain.sbatch', 'finetune.sbatch', 'evaluate.sbatch')


# --------------------------------------------------------------------------
# sbatch templates: run with bash and a stand-in srun that prints its args
# --------------------------------------------------------------------------
@pytest.fixture
def fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text('#!/bin/sh\nprintf "SRUN"; printf " <%s>" "$@"; echo\n'
                    'echo "PORT=$MASTER_PORT"\n')
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def _run_template(name, fake_srun, tmp_path, **env):
    e = dict(os.environ)
    e.update(PATH=fake_srun + os.pathsep + e['PATH'], ROOT=ROOT,
             SLURM_JOB_ID='12345')
    e.update(env)
    return subprocess.run(['bash', osp.join(SLURM_DIR, name)], env=e,
                          cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize('name', TEMPLATES)
def test_template_headers(name):
    path = osp.join(SLURM_DIR, name)
    text = open(path).read()
    assert subprocess.run(['bash', '-n', path]).returncode == 0
    for opt in ('--job-name', '--account', '--partition', '--gres=gpu',
                '--time', '--cpus-per-task'):
        assert f'SBATCH {opt}' in text, f'{name}: no #SBATCH {opt} line'
    assert '--launcher slurm' in text
    assert 'CONFIG=${CONFIG:-' in text


@pytest.mark.parametrize('name', ('pretrain.sbatch', 'finetune.sbatch'))
def test_training_templates_forward_the_warning(name, tmp_path):
    """USR1 to the batch shell reaches srun; tasks that die of it get the
    job requeued from the shell (negative control: no warning, no
    requeue)."""
    import time
    text = open(osp.join(SLURM_DIR, name)).read()
    assert '#SBATCH --signal=B:USR1@' in text and '#SBATCH --requeue' in text
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'calls.log'
    (bin_dir / 'srun').write_text(
        f'#!/bin/bash\ntrap \'echo srun-got-USR1 >> {log}; '
        f'exit $FAKE_SRUN_STATUS\' USR1\n'
        f'echo $$ > {tmp_path}/srun.pid\n'
        f'echo srun-started >> {log}\nfor i in $(seq 40); do sleep 0.1; '
        f'done\n')
    (bin_dir / 'scontrol').write_text(
        f'#!/bin/sh\necho "scontrol $*" >> {log}\n')
    (bin_dir / 'scancel').write_text(
        f'#!/bin/sh\necho "scancel $*" >> {log}\n'
        f'kill -USR1 $(cat {tmp_path}/srun.pid)\n')
    for tool in ('srun', 'scontrol', 'scancel'):
        (bin_dir / tool).chmod(0o755)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('')
    ckpt = tmp_path / 'p.pth'
    ckpt.write_bytes(b'x')
    data = tmp_path / 'labeled'
    (data / 'annotations').mkdir(parents=True)
    for split in ('training', 'validation'):
        (data / 'annotations' / f'{split}.json').write_text('{}')
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
               ROOT=ROOT, SLURM_JOB_ID='777', CONFIG=str(cfg),
               PRETRAIN_CKPT=str(ckpt), DATA_ROOT=str(data))
    # (warning sent, srun's status after it): tasks that died of it -> the
    # shell requeues; tasks that ended cleanly (the run had finished) -> no
    # requeue, exit 0; no warning -> no requeue
    for warn, status in ((True, 3), (True, 0), (False, 0)):
        log.write_text('')
        env['FAKE_SRUN_STATUS'] = str(status)
        proc = subprocess.Popen(['bash', osp.join(SLURM_DIR, name)], env=env,
                                cwd=str(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for _ in range(100):
            if 'srun-started' in log.read_text():
                break
            time.sleep(0.1)
        if warn:
            proc.send_signal(signal.SIGUSR1)
        out = proc.communicate(timeout=60)[0]
        calls = log.read_text()
        if warn:
            assert proc.returncode == status, out
            assert 'srun-got-USR1' in calls, out
            assert 'scancel --signal=USR1 777' in calls, out
            assert ('scontrol requeue 777' in calls) == (status != 0), out
            assert 'asking the tasks to checkpoint' in out
        else:
            assert proc.returncode == 0, out
            assert 'scontrol' not in calls


def test_pretrain_template(tmp_path, fake_srun):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('')
    res = _run_template('pretrain.sbatch', fake_srun, tmp_path,
                        CONFIG=str(cfg), SLURM_NTASKS='4',
                        DATA_ROOT='/d/demo', WORK_DIR=str(tmp_path / 'wd'))
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith('SRUN')][0]
    assert '<tools/train.py>' in line and '<--launcher> <slurm>' in line
    assert '<train_dataloader.batch_size=32>' in line  # 128 / 4 tasks
    assert '<train_dataloader.dataset.data_root=/d/demo>' in line
    assert '<--resume>' in line
    assert 'PORT=' in res.stdout and 'PORT=\n' not in res.stdout
    # global batch must divide among the tasks
    res = _run_template('pretrain.sbatch', fake_srun, tmp_path,
                        CONFIG=str(cfg), SLURM_NTASKS='3')
    assert res.returncode == 1 and 'divisible' in res.stderr
    res = _run_template('pretrain.sbatch', fake_srun, tmp_path,
                        CONFIG='configs/nope.py')
    assert res.returncode == 1 and 'configs/nope.py not found' in res.stderr


def test_finetune_template(tmp_path, fake_srun):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('')
    res = _run_template('finetune.sbatch', fake_srun, tmp_path,
                        CONFIG=str(cfg), PRETRAIN_CKPT='nope.pth')
    assert res.returncode == 1 and 'PRETRAIN_CKPT=nope.pth' in res.stderr
    ckpt = tmp_path / 'epoch_230.pth'
    ckpt.write_bytes(b'x')
    data = tmp_path / 'labeled'
    (data / 'annotations').mkdir(parents=True)
    for split in ('training', 'validation'):
        (data / 'annotations' / f'{split}.json').write_text('{}')
    res = _run_template('finetune.sbatch', fake_srun, tmp_path,
                        CONFIG=str(cfg), PRETRAIN_CKPT=str(ckpt),
                        DATA_ROOT=str(data), RESUME='0')
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith('SRUN')][0]
    assert f'<model.backbone.init_cfg.checkpoint={ckpt}>' in line
    assert f'<val_dataloader.dataset.data_root={data}/>' in line
    assert (f'<val_evaluator.ann_file={data}/annotations/validation.json>'
            in line)
    assert '<--resume>' not in line
    # a Soft Teacher config: detector.* key, labeled + unlabeled roots
    semi = tmp_path / 'soft-teacher_x.py'
    semi.write_text('')
    res = _run_template('finetune.sbatch', fake_srun, tmp_path,
                        CONFIG=str(semi), PRETRAIN_CKPT=str(ckpt),
                        DATA_ROOT=str(data), UNLABELED_ROOT='/no/such/dir')
    assert res.returncode == 1 and 'UNLABELED_ROOT=/no/such/dir' in res.stderr
    res = _run_template('finetune.sbatch', fake_srun, tmp_path,
                        CONFIG=str(semi), PRETRAIN_CKPT=str(ckpt),
                        DATA_ROOT=str(data), UNLABELED_ROOT=str(tmp_path))
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith('SRUN')][0]
    assert f'<model.detector.backbone.init_cfg.checkpoint={ckpt}>' in line
    assert (f'<train_dataloader.dataset.datasets.0.data_root={data}/>'
            in line)
    assert (f'<train_dataloader.dataset.datasets.1.data_root={tmp_path}/>'
            in line)
    assert '<train_dataloader.dataset.data_root=' not in line


def test_evaluate_template(tmp_path, fake_srun):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('')
    ckpt = tmp_path / 'det.pth'
    ckpt.write_bytes(b'x')
    data = tmp_path / 'labeled'
    (data / 'annotations').mkdir(parents=True)
    (data / 'annotations' / 'validation.json').write_text('{}')
    res = _run_template('evaluate.sbatch', fake_srun, tmp_path,
                        CONFIG=str(cfg), CHECKPOINT=str(ckpt),
                        DATA_ROOT=str(data))
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if x.startswith('SRUN')][0]
    assert f'<tools/test.py> <{cfg}> <{ckpt}>' in line
    assert '<test_dataloader.dataset.data_prefix.img=validation/images/>' \
        in line
