"""Fault injection, in process: checkpoints. Untrusted
(code-running) checkpoints are refused by every loader; a disk that fills up
during a save keeps the previous checkpoint.

docs/reliability.md has the table of faults, how each is injected and the
test that covers it.
"""
import errno
import logging
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from fault_helpers import DiskFullFile, RunsCode
from mmengine.runner import CheckpointLoader
from PIL import Image
from process_helpers import ROOT
from reliability_helpers import (DET, VICREG, run_tool, vicreg_opts,
                                 vicreg_runner)

from projects.compat import UntrustedCheckpointError


def evil_checkpoint(path, marker):
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(1)},
                'meta': RunsCode(marker)}, str(path))
    return str(path)


# ---------------------------------------------------- untrusted checkpoints
def test_untrusted_checkpoint_refused_by_train_resume_and_load_from(
        tmp_path, unlabeled, monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    opts = [f'{k}={v}' for k, v in
            vicreg_opts(unlabeled, tmp_path / 'cache').items()]
    work = tmp_path / 'work'
    # --resume PATH
    with pytest.raises(UntrustedCheckpointError, match='Refusing to load'):
        run_tool('train.py', VICREG, '--work-dir', work, '--resume', evil,
                 '--cfg-options', *opts, monkeypatch=monkeypatch)
    # --resume (auto): last_checkpoint in the work dir points at it
    (work / 'last_checkpoint').write_text(evil)
    with pytest.raises(UntrustedCheckpointError):
        run_tool('train.py', VICREG, '--work-dir', work, '--resume',
                 '--cfg-options', *opts, monkeypatch=monkeypatch)
    # load_from
    with pytest.raises(UntrustedCheckpointError):
        run_tool('train.py', VICREG, '--work-dir', tmp_path / 'w2',
                 '--cfg-options', *opts, f'load_from={evil}',
                 monkeypatch=monkeypatch)
    assert not marker.exists()
    assert not list(work.glob('*.pth'))  # nothing trained


def test_untrusted_checkpoint_refused_by_test_tool(tmp_path, unlabeled,
                                                  monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    from det_helpers import make_split

    from projects.detection.converters import convert_to_file
    root = tmp_path / 'labeled'
    make_split(str(root), 'validation', [1, 2], size=(64, 80))
    convert_to_file(str(root), 'validation',
                    str(root / 'annotations/validation.json'), workers=0)
    with pytest.raises(UntrustedCheckpointError):
        run_tool('test.py', DET, evil, '--work-dir', tmp_path / 'work',
                 '--cfg-options', f'test_dataloader.dataset.data_root={root}/',
                 f'test_evaluator.ann_file={root}/annotations/'
                 'validation.json', 'test_dataloader.num_workers=0',
                 'test_dataloader.persistent_workers=False',
                 monkeypatch=monkeypatch)
    assert not marker.exists()


def test_untrusted_checkpoint_refused_by_init_cfg_converters_and_infer(
        tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    evil = evil_checkpoint(tmp_path / 'evil.pth', marker)
    # init_cfg=Pretrained (the detector's backbone) and the backbone check
    from mmdet.models.backbones import ResNet as DetResNet
    det = DetResNet(depth=18, init_cfg=dict(type='Pretrained',
                                            checkpoint=evil,
                                            prefix='backbone.'))
    with pytest.raises(UntrustedCheckpointError):
        det.init_weights()
    from projects.detection.engine.hooks.pretrained_backbone_check_hook import \
        load_backbone_state
    with pytest.raises(UntrustedCheckpointError):
        load_backbone_state(evil, "backbone.")
    # every model converter
    conv = osp.join(ROOT, 'tools', 'model_converters')
    for name in sorted(os.listdir(conv)):
        if not name.endswith('.py'):
            continue
        monkeypatch.setattr(sys, 'argv',
                            [name, evil, str(tmp_path / f'out_{name}.pth')])
        with pytest.raises((UntrustedCheckpointError, SystemExit)) as err:
            runpy.run_path(osp.join(conv, name), run_name='__main__')
        if err.type is SystemExit:  # a converter that reports and exits
            assert 'Refusing to load' in str(err.value.code), name
        assert not (tmp_path / f'out_{name}.pth').exists(), name
    # tools/infer.py
    img = tmp_path / '1.JPEG'
    Image.new('RGB', (32, 32)).save(img)
    monkeypatch.setattr(sys, 'argv', ['infer.py', DET, evil, str(img),
                                      '--out-dir', str(tmp_path / 'pred')])
    with pytest.raises(UntrustedCheckpointError):
        runpy.run_path(osp.join(ROOT, 'tools/infer.py'), run_name='__main__')
    assert not marker.exists()


def test_no_direct_torch_load_in_project_code():
    """Every checkpoint read goes through projects.compat.safe_torch_load
    (or mmengine's CheckpointLoader, which it replaces)."""
    out = subprocess.run(
        ['grep', '-rnE', r'torch\.load\(|pickle\.loads?\(|allow_pickle=True',
         'projects', 'tools', '--include=*.py'],
        cwd=ROOT, capture_output=True, text=True)
    hits = [ln for ln in out.stdout.splitlines()
            if not ln.startswith('projects/compat/checkpoint.py')]
    assert hits == []


# ------------------------------------------------------------- disk full
def _mount_tmpfs(path, size_mb):
    path.mkdir()
    if os.geteuid() != 0:
        return False
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size_mb}M',
                          'tmpfs', str(path)], capture_output=True)
    return res.returncode == 0


def test_disk_full_during_checkpoint_save(tmp_path, unlabeled, monkeypatch):
    """A real training run whose second checkpoint does not fit: a clear
    ENOSPC error, the first checkpoint and last_checkpoint intact. On a
    small tmpfs when this user may mount one, otherwise an injected
    ENOSPC in the middle of the write."""
    probe = tmp_path / 'probe'
    runner = vicreg_runner(tmp_path, unlabeled, probe, epochs=1)
    runner.train()
    size = (probe / 'epoch_1.pth').stat().st_size
    work = tmp_path / 'work'
    mounted = _mount_tmpfs(work, int(size * 1.6 / 2**20) + 1)
    try:
        if not mounted:
            import projects.compat.atomic_io as aio
            real_fdopen = os.fdopen

            def fdopen(fd, mode='r', *a, **k):
                name = os.readlink(f'/proc/self/fd/{fd}')
                f = real_fdopen(fd, mode, *a, **k)
                return DiskFullFile(f) if '.epoch_2.pth.' in name else f

            monkeypatch.setattr(aio.os, 'fdopen', fdopen)
        runner = vicreg_runner(tmp_path, unlabeled, work, epochs=2)
        with pytest.raises(OSError) as err:
            runner.train()
        assert err.value.errno == errno.ENOSPC
        assert 'No space left on device' in str(err.value)
        names = sorted(os.listdir(work))
        assert 'epoch_1.pth' in names and 'epoch_2.pth' not in names
        assert not [n for n in names if n.endswith('.tmp')]
        assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')
        ckpt = CheckpointLoader.load_checkpoint(str(work / 'epoch_1.pth'))
        assert ckpt['meta']['epoch'] == 1
    finally:
        for h in list(runner.logger.handlers):  # the log file is in `work`
            if isinstance(h, logging.FileHandler):
                h.close()
                runner.logger.removeHandler(h)
        if mounted:
            subprocess.run(['umount', '-l', str(work)], check=False)
    print(f'disk full: {"tmpfs" if mounted else "injected ENOSPC"}')
