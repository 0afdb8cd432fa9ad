"""Process death: kill -9 of tools/train.py at seeded random
points, many inside a checkpoint write, then ``--resume`` until the run
finishes; and one rank of a 2-process gloo job dying.

Checkpoint writes are slowed down by a wrapper around tools/train.py (the
data is written in 4 chunks with a pause after each, through the project's
real atomic writer), so a kill can land in the middle of one. After every
kill: ``last_checkpoint`` names a complete checkpoint that loads, and every
``*.pth`` under its real name loads.
"""
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from mmengine.runner import CheckpointLoader
from process_helpers import ROOT, free_port, rank_pids

VICREG = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')
DET = osp.join(ROOT, 'configs/faster_rcnn/'
               'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')
pytestmark = pytest.mark.slow

SLOW_SAVE = '''
import os, sys, time, runpy
sys.path.insert(0, {root!r})
import projects.compat.atomic_io as aio
# isort: split
DELAY = {delay}
real_fdopen, real_write = os.fdopen, aio.atomic_write


class _Slow:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def write(self, data):
        step = max(1, len(data) // 4)
        for i in range(0, len(data), step):
            self.f.write(data[i:i + step])
            self.f.flush()
            time.sleep(DELAY)
    def flush(self):
        self.f.flush()
    def fileno(self):
        return self.f.fileno()


def atomic_write(data, filepath):
    print('@@SAVE-BEGIN', filepath, flush=True)
    aio.os.fdopen = lambda fd, mode: _Slow(real_fdopen(fd, mode))
    try:
        real_write(data, filepath)
    finally:
        aio.os.fdopen = real_fdopen
    print('@@SAVE-END', filepath, flush=True)


aio.atomic_write = atomic_write
sys.argv = ['train.py'] + sys.argv[1:]
runpy.run_path(os.path.join({root!r}, 'tools', 'train.py'),
               run_name='__main__')
'''


class Run:
    """tools/train.py (through the slow-save wrapper) with its output read
    line by line in a thread."""

    def __init__(self, wrapper, args, env):
        self.proc = subprocess.Popen(
            [sys.executable, '-u', str(wrapper), *map(str, args)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env)
        self.lines = []
        self.events = []  # (kind, time): 'iter', 'save', 'saved'
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            now = time.monotonic()
            if line.startswith('@@SAVE-BEGIN') and '.pth' in line:
                self.events.append(('save', now))
            elif line.startswith('@@SAVE-END') and '.pth' in line:
                self.events.append(('saved', now))
            elif 'Epoch(train)' in line or 'Iter(train)' in line:
                self.events.append(('iter', now))

    def wait_for(self, kind, n, timeout=300):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sum(1 for k, _ in self.events if k == kind) >= n:
                return True
            if self.proc.poll() is not None:
                self.thread.join(5)
                return sum(1 for k, _ in self.events if k == kind) >= n
            time.sleep(0.02)
        raise TimeoutError(f'no {kind} #{n}:\n' + ''.join(self.lines[-50:]))

    def kill(self):
        """kill -9; returns whether a checkpoint write was in progress."""
        in_save = bool(self.events) and self.events[-1][0] == 'save'
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.thread.join(10)
        return in_save

    def output(self):
        return ''.join(self.lines)


def check_work_dir(work):
    """No truncated checkpoint under a real name; last_checkpoint (if any)
    points at a complete one. Returns its meta."""
    for name in os.listdir(work):
        if name.endswith('.pth') and not name.startswith('.'):
            CheckpointLoader.load_checkpoint(str(work / name))
    last = work / 'last_checkpoint'
    if not last.exists():
        return None
    path = last.read_text().strip()
    assert osp.isfile(path), f'last_checkpoint -> missing {path}'
    ckpt = CheckpointLoader.load_checkpoint(path)
    assert {'meta', 'state_dict', 'optimizer'} <= set(ckpt)
    return ckpt['meta']


def kill_and_resume(tmp_path, config, opts, max_epochs, seed, kills=5,
                    delay=0.15):
    wrapper = tmp_path / 'slow_save_train.py'
    wrapper.write_text(SLOW_SAVE.format(root=ROOT, delay=delay))
    work = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    rng = random.Random(seed)
    base = [config, '--work-dir', work, '--no-validate', '--cfg-options',
            *opts, f'train_cfg.max_epochs={max_epochs}']
    history, last_meta = [], None
    for k in range(kills):
        run = Run(wrapper, base + ([] if k == 0 else ['--resume']), env)
        # a kill in a checkpoint write, or at a random moment after an
        # iteration; which one and when drawn from the seeded generator
        # (each kill point is at most one epoch past the resume point, so
        # max_epochs > kills + 1 leaves every run something to do)
        if rng.random() < 0.6:
            target, n = 'save', rng.randint(1, 2)
            pause = rng.uniform(0.1 * delay, 3.5 * delay)
        else:
            target, n = 'iter', rng.randint(1, 3)
            pause = rng.uniform(0, 1.0)
        assert run.wait_for(target, n), run.output()[-3000:]
        time.sleep(pause)
        in_save = run.kill()
        meta = check_work_dir(work)
        if last_meta is not None:  # never goes backwards
            assert meta['iter'] >= last_meta['iter']
        last_meta = meta or last_meta
        history.append((target, n, round(pause, 3), in_save,
                        meta and meta['iter']))
    run = Run(wrapper, base + ['--resume'], env)
    assert run.proc.wait(600) == 0, run.output()[-4000:]
    run.thread.join(10)
    if last_meta is not None:
        assert (f"resumed epoch: {last_meta['epoch']}, "
                f"iter: {last_meta['iter']}") in run.output()
    final = check_work_dir(work)
    assert final['epoch'] == max_epochs
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        f'epoch_{max_epochs}.pth')
    print(config, 'kills (target, n, pause, in save, resumable iter):',
          history)
    assert sum(h[3] for h in history) >= 2, history  # >= 2 kills mid-save
    leftovers = [n for n in os.listdir(work) if n.endswith('.tmp')]
    return history, leftovers


def test_kill9_vicreg_resumes_to_the_end(tmp_path):
    from projects.vicreg.demo_data import write_demo_folder
    write_demo_folder(str(tmp_path / 'data'), num=8, size=40)
    opts = [
        f'train_dataloader.dataset.data_root={tmp_path / "data"}',
        f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}',
        'train_dataloader.batch_size=4',  # 2 iterations per epoch
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1', 'randomness.seed=0',
    ]
    kill_and_resume(tmp_path, VICREG, opts, max_epochs=7, seed=3)


def test_kill9_detector_resumes_to_the_end(tmp_path):
    from det_helpers import make_split

    from projects.detection.converters import convert_to_file
    root = tmp_path / 'labeled'
    make_split(str(root), 'training', range(1, 5), size=(64, 96), seed=3)
    convert_to_file(str(root), 'training',
                    str(root / 'annotations/training.json'), workers=0)
    opts = [
        f'train_dataloader.dataset.data_root={root}/',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.checkpoint.save_last=True', 'randomness.seed=0',
    ]
    kill_and_resume(tmp_path, DET, opts, max_epochs=7, seed=11)


# --------------------------------------------------------------- rank death
def test_one_rank_dies_job_ends_with_message(tmp_path):
    from projects.vicreg.demo_data import write_demo_folder
    write_demo_folder(str(tmp_path / 'data'), num=16, size=40)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()))
    cmd = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), VICREG, '2',
           '--work-dir', str(tmp_path / 'work'), '--cfg-options',
           f'train_dataloader.dataset.data_root={tmp_path / "data"}',
           f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}',
           'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False',
           'default_hooks.logger.interval=1', 'train_cfg.max_epochs=1000']
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    reader = threading.Thread(
        target=lambda: [lines.append(ln) for ln in proc.stdout], daemon=True)
    reader.start()
    try:
        end = time.monotonic() + 300
        while not any('Epoch(train)' in ln for ln in lines):
            assert proc.poll() is None, ''.join(lines)[-3000:]
            assert time.monotonic() < end, ''.join(lines)[-3000:]
            time.sleep(0.1)
        ranks = rank_pids(proc.pid)
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGKILL)
        t0 = time.monotonic()
        rc = proc.wait(120)  # bounded: torchrun tears down rank 0
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            for pid in rank_pids(proc.pid).values():
                os.kill(pid, signal.SIGKILL)
            proc.kill()
    reader.join(10)
    out = ''.join(lines)
    print(f'rank 1 killed: torchrun exited {rc} after {took:.1f}s')
    assert rc != 0
    assert 'ChildFailedError' in out or 'failed' in out.lower()
    assert 'Signal 9' in out or 'SIGKILL' in out, out[-3000:]
    assert not rank_pids(proc.pid)
