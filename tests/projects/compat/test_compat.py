"""The compatibility fixes of projects.compat."""
import collections
import datetime
import importlib.util
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
from fault_helpers import DiskFullFile, RunsCode
from mmengine.optim.scheduler import OneCycleParamScheduler
from mmengine.runner import CheckpointLoader, load_checkpoint
from process_helpers import ROOT

import projects.compat.checkpoint as compat_checkpoint
from projects.compat import TRUST_ENV_VAR, UntrustedCheckpointError
from projects.compat.hue import _mmcv_adjust_hue, adjust_hue


# ---------------------------------------------------------------- mmcv ops
def test_mmcv_nms_matches_torchvision():
    torchvision = pytest.importorskip('torchvision')
    from mmcv.ops import nms
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=gen) * 30],
                      1)
    scores = torch.rand(200, generator=gen)
    _, keep = nms(boxes, scores, 0.5)
    ref = torchvision.ops.nms(boxes, scores, 0.5)
    assert keep.tolist() == ref.tolist()


def test_mmcv_roi_align_matches_torchvision():
    torchvision = pytest.importorskip('torchvision')
    from mmcv.ops import RoIAlign
    gen = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 3, 16, 16, generator=gen)
    rois = torch.tensor([[0, 1.5, 2.0, 9.0, 12.5], [1, 0.0, 0.0, 15.0, 7.0]])
    ours = RoIAlign((4, 4), 0.5, sampling_ratio=2, aligned=True)(feat, rois)
    ref = torchvision.ops.roi_align(feat, rois, (4, 4), 0.5, 2, aligned=True)
    torch.testing.assert_close(ours, ref)


# -------------------------------------------------------------- checkpoints
@pytest.fixture(params=[
    pytest.param('safe_globals', marks=pytest.mark.skipif(
        not compat_checkpoint.TORCH_SAFE_GLOBALS,
        reason='torch < 2.6: no safe_globals with (obj, name) entries')),
    'restricted'])
def loader(request, monkeypatch):
    """Each checkpoint path of safe_torch_load: torch's weights-only one
    (torch >= 2.6) and the restricted unpickler (torch < 2.6, also run on
    newer torch)."""
    monkeypatch.setattr(compat_checkpoint, 'TORCH_SAFE_GLOBALS',
                        request.param == 'safe_globals')
    return request.param


def test_malicious_checkpoint_is_refused(tmp_path, loader):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': RunsCode(marker)}, path)
    with pytest.raises(UntrustedCheckpointError, match='Refusing to load'):
        CheckpointLoader.load_checkpoint(path)
    with pytest.raises(UntrustedCheckpointError, match=TRUST_ENV_VAR):
        load_checkpoint(nn.Linear(2, 2), path)
    assert not marker.exists()


def test_restricted_getattr_in_checkpoint(tmp_path, loader):
    """Only getattr(HistoryBuffer, <statistic>) may appear in a pickle."""

    class _GetattrPayload:

        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(path)


def test_trusted_opt_in_loads_full_pickle(tmp_path, monkeypatch, loader):
    path = str(tmp_path / 'date.pth')
    torch.save({'meta': {'day': datetime.date(2022, 4, 25)}}, path)
    with pytest.raises(UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(path)
    monkeypatch.setenv(TRUST_ENV_VAR, '1')
    ckpt = CheckpointLoader.load_checkpoint(path)
    assert ckpt['meta']['day'] == datetime.date(2022, 4, 25)


def test_checkpoint_value_types_load(tmp_path, loader):
    """What runner checkpoints hold (bytes, sets, Counters, numpy scalars
    and arrays, parameters, log buffers) loads on either path."""
    from mmengine.logging import HistoryBuffer
    buffer = HistoryBuffer()
    buffer.update(1.), buffer.update(2.)
    value = {'w': nn.Parameter(torch.ones(2)), 'bytes': b'xy', 'set': {1},
             'scalar': np.float64(2.5), 'array': np.arange(3),
             'dtype': torch.float16, 'size': torch.Size([2]),
             'counter': collections.Counter([1, 1]), 'log': buffer}
    path = str(tmp_path / 'types.pth')
    torch.save(value, path)
    loaded = CheckpointLoader.load_checkpoint(path)
    assert loaded.keys() == value.keys()
    assert loaded['log'].mean() == 1.5
    for key in ('bytes', 'set', 'scalar', 'dtype', 'size', 'counter'):
        assert loaded[key] == value[key]
    np.testing.assert_array_equal(loaded['array'], value['array'])


def test_restricted_unpickler_builds_no_class(tmp_path):
    """BUILD on a class object (not an instance) would overwrite the class's
    attributes; the restricted unpickler refuses it."""
    payload = (b'\x80\x02ccollections\nOrderedDict\nN}X\x04\x00\x00\x00'
               b'keysK\x01s\x86b.')  # OrderedDict.keys = 1
    path = tmp_path / 'build.pth'
    path.write_bytes(payload)
    with pytest.raises(UntrustedCheckpointError, match='state of'):
        compat_checkpoint._RestrictedPickle.load(open(path, 'rb'))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def _runner(work_dir, max_epochs, resume, param_scheduler=None):
    """mmengine's own toy model and dataset (``mmengine.testing``); not its
    ``RunnerTestCase`` class: a unittest.TestCase cannot take the
    parametrized ``loader`` fixture these tests run under."""
    from mmengine.runner import Runner
    from mmengine.testing.runner_test_case import ToyDataset, ToyModel
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(  # 12 samples: 2 iterations an epoch
            dataset=ToyDataset(), batch_size=6,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=param_scheduler,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        default_scope='mmengine',
        experiment_name=f'toy_{max_epochs}_{resume}')


def test_runner_checkpoint_resumes_under_current_torch(tmp_path, loader):
    """A full runner checkpoint (message hub, optimizer, numpy state) saved by
    this torch loads with weights_only and training continues from it."""
    first = _runner(tmp_path, max_epochs=2, resume=False)
    first.train()
    ckpt = torch.load(tmp_path / 'epoch_2.pth', weights_only=False)
    assert 'message_hub' in ckpt
    if torch.__version__ >= '2.6':  # weights_only=True by default since
        with pytest.raises(pickle.UnpicklingError):  # the breakage
            torch.load(tmp_path / 'epoch_2.pth')
    second = _runner(tmp_path, max_epochs=3, resume=True)
    second.train()
    assert second.epoch == 3 and second.iter == 6
    assert osp.isfile(tmp_path / 'epoch_3.pth')
    # the optimizer momentum came back from the checkpoint
    assert second.optim_wrapper.optimizer.state


# constructor arguments of each of mmengine's parameter schedulers (the
# *LR and *Momentum variants take the same ones)
_SCHEDULER_ARGS = dict(
    Constant={}, CosineAnnealing=dict(T_max=4, eta_min=0.),
    CosineRestart=dict(periods=[2, 2], restart_weights=[1, .5], eta_min=0.),
    Exponential=dict(gamma=.9), Linear={}, MultiStep=dict(milestones=[1, 2]),
    OneCycle=dict(eta_max=0.5, total_steps=6), Poly={}, ReduceOnPlateau={},
    Step=dict(step_size=2))


def test_every_param_scheduler_state_loads(tmp_path, loader):
    """The state of each of mmengine's registered parameter schedulers, as a
    runner checkpoint holds it, loads under the allow-list."""
    from mmengine.registry import PARAM_SCHEDULERS
    from mmengine.runner.checkpoint import save_checkpoint
    states = {}
    for name, cls in PARAM_SCHEDULERS.module_dict.items():
        kind = re.sub(r'(LR|Momentum|ParamScheduler)$', '', name)
        args = dict(_SCHEDULER_ARGS[kind])  # KeyError: a new scheduler
        if name.endswith('ParamScheduler'):
            args['param_name'] = 'lr'
        optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=.1,
                                    momentum=.9)
        scheduler = cls(optimizer, **args)
        optimizer.step(), scheduler.step()
        states[name] = scheduler.state_dict()
    assert {'OneCycleLR', 'OneCycleParamScheduler'} <= set(states)
    path = str(tmp_path / 'schedulers.pth')
    save_checkpoint({'param_schedulers': list(states.values())}, path)
    loaded = CheckpointLoader.load_checkpoint(path)['param_schedulers']
    for want, got in zip(states.values(), loaded):
        assert got.keys() == want.keys()
        assert got.get('anneal_func') is want.get('anneal_func')


def test_one_cycle_runner_checkpoint_resumes(tmp_path, loader):
    """A run with OneCycleLR resumes from its checkpoint and continues the
    schedule where it stopped."""
    # end=6: the default end is the first run's last iteration (4)
    one_cycle = [dict(type='OneCycleLR', eta_max=0.05, total_steps=6,
                      end=6, by_epoch=False, anneal_strategy=s)
                 for s in ('cos', 'linear')]
    _runner(tmp_path, max_epochs=2, resume=False,
            param_scheduler=one_cycle).train()
    second = _runner(tmp_path, max_epochs=3, resume=True,
                     param_scheduler=one_cycle)
    second.train()
    assert second.iter == 6
    assert [s.last_step for s in second.param_schedulers] == [5, 5]


@pytest.mark.parametrize('payload', [
    (OneCycleParamScheduler, (None, 'lr')),
    (getattr, (OneCycleParamScheduler, 'step')),
    (getattr, (OneCycleParamScheduler, '__init__')),
])
def test_one_cycle_allowance_is_narrow(tmp_path, payload, loader):
    """Only the two annealing functions may be read from the OneCycle
    class; it cannot be instantiated, nor other attributes reached."""

    class _Payload:

        def __reduce__(self):
            return payload

    path = str(tmp_path / 'one_cycle.pth')
    torch.save({'param_schedulers': [{'x': _Payload()}]}, path)
    with pytest.raises(UntrustedCheckpointError,
                       match=r'Detail: .*OneCycleParamScheduler.* (may not '
                       r'be instantiated|is not allowed)'):
        CheckpointLoader.load_checkpoint(path)


# ---------------------------------------------------------- numpy 2 + hue
def _hue_reference(img, factor):
    """numpy-1 semantics of mmcv's hue rotation, written independently."""
    import cv2
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL).astype(np.int64)
    hsv[..., 0] = (hsv[..., 0] + int(factor * 255)) % 256
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR_FULL)


def test_adjust_hue_negative_factor_numpy2():
    import mmcv
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert mmcv.adjust_hue is adjust_hue
    for factor in (-0.5, -0.1, -0.0371, 0.0, 0.05, 0.5):
        np.testing.assert_array_equal(
            mmcv.adjust_hue(img, factor), _hue_reference(img, factor))
    # positive factors are unchanged from mmcv's own function
    np.testing.assert_array_equal(
        adjust_hue(img, 0.1), _mmcv_adjust_hue(img, 0.1))
    np.testing.assert_array_equal(
        adjust_hue(img, 0.1, backend='pillow'),
        _mmcv_adjust_hue(img, 0.1, backend='pillow'))
    assert adjust_hue(img, -0.1, backend='pillow').shape == img.shape


def test_color_jitter_view_runs_with_numpy2():
    from mmpretrain.datasets.transforms import ColorJitter
    np.random.seed(0)
    img = np.random.randint(0, 256, (32, 32, 3), dtype=np.uint8)
    jitter = ColorJitter(0.4, 0.4, 0.2, 0.1)
    for _ in range(20):  # hue_factor < 0 about half of the time
        assert jitter(dict(img=img.copy()))['img'].shape == img.shape


# ------------------------------------------------------- transformers >= 5
BUILD_AND_TRAIN = textwrap.dedent('''
    import sys
    if sys.argv[1] == 'compat':
        import projects.compat  # noqa: F401
    else:  # only the mmcv ops fix (mmcv-lite), loaded without the package
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            'mmcv_ops', 'projects/compat/mmcv_ops.py')
        mmcv_ops = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mmcv_ops)
        mmcv_ops.install_ext_finder()
    import torch
    import mmdet.models  # noqa: F401
    import mmpretrain.models  # noqa: F401
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as PRE
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    net = PRE.build(dict(type='ResNet', depth=18))
    loss = net(torch.rand(2, 3, 32, 32))[-1].mean()
    loss.backward()
    init_default_scope('mmdet')
    det = DET.build(dict(type='ResNet', depth=18, num_stages=4,
                         out_indices=(3, )))
    det(torch.rand(2, 3, 64, 64))[-1].sum().backward()
    print('built and trained')
''')


def _run_with_fake_transformers(site, mode):
    env = dict(os.environ, PYTHONPATH=f'{site}{os.pathsep}{ROOT}')
    if mode == 'plain':  # the start-up hook would apply projects.compat
        env['VICREG_DET_STARTUP_HOOK'] = '0'
    return subprocess.run([sys.executable, '-c', BUILD_AND_TRAIN, mode],
                          env=env, capture_output=True, text=True, cwd=ROOT)


def test_transformers5_stand_in_breaks_without_compat(transformers5_site):
    out = _run_with_fake_transformers(transformers5_site, 'plain')
    assert out.returncode != 0
    # the crash comes from mmpretrain code imported only when
    # WITH_MULTIMODAL (models/utils/huggingface.py, models/multimodal/)
    assert 'TypeError' in out.stderr, out.stderr[-2000:]
    assert 'huggingface.py' in out.stderr or 'multimodal' in out.stderr


def test_transformers5_stand_in_works_with_compat(transformers5_site):
    out = _run_with_fake_transformers(transformers5_site, 'compat')
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'built and trained' in out.stdout


# ------------------------------------------------------------------ install
def test_install_entry_point_is_idempotent():
    """On an installed environment the installer changes nothing."""
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools/install.py')],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert 'pip install' not in out.stdout
    assert 'building mmcv' not in out.stdout
    summary = [ln for ln in out.stdout.splitlines()
               if ln.startswith('python ')]
    assert summary and re.search(r'mmcv 2\.1\.0 ops (torchvision|compiled) CPU',
                                 summary[0])


def _install_module():
    spec = importlib.util.spec_from_file_location(
        'install_tool', osp.join(ROOT, 'tools', 'install.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_install_refuses_a_torch_outside_the_supported_range(monkeypatch):
    install = _install_module()
    monkeypatch.delenv(install.ANY_TORCH_ENV, raising=False)  # make test-torch
    assert install.TORCH_RANGE == ('2.1', '2.15')
    for inside in ('2.14.1+cu130', '2.14.0+cpu', '2.4.1+cu121', '2.1.2'):
        install.check_torch_range(inside)  # no error
    for outside in ('2.0.1+cpu', '2.15.0', '1.13.1+cpu'):
        with pytest.raises(install.StepError, match=rf'torch {re.escape(outside)} is '
                           r'outside the supported range \[2\.1, 2\.15\)'):
            install.check_torch_range(outside)
    monkeypatch.setenv(install.ANY_TORCH_ENV, '1')
    install.check_torch_range('2.0.1')  # explicitly allowed: a warning


def test_install_keeps_numpy_1_under_an_old_torch():
    """torch < 2.3 is built against numpy 1: every pip call is constrained
    to numpy < 2 there (opencv-python 5 would pull numpy 2 in)."""
    install = _install_module()
    assert install.torch_constraints('2.1.2+cpu') == ['numpy<2']
    assert install.torch_constraints('2.2.0') == ['numpy<2']
    for newer in ('2.3.0', '2.4.1+cu121', '2.14.1+cu130', None):
        assert install.torch_constraints(newer) == []


# ------------------------------------------------------------ atomic saves
def test_failed_checkpoint_save_keeps_previous_file(tmp_path, monkeypatch):
    """A write that dies half-way (disk full) leaves the old file intact and
    no temporary file behind."""
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    good = path.read_bytes()

    real_fdopen = os.fdopen
    monkeypatch.setattr(os, 'fdopen',
                        lambda fd, mode: DiskFullFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']
    ckpt = CheckpointLoader.load_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(3))


def _save(path, value):
    from mmengine.runner.checkpoint import save_checkpoint
    save_checkpoint({'state_dict': {'w': torch.full((2, ), value)}},
                    str(path))


def _mode(path):
    return os.stat(path).st_mode & 0o7777


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_new_checkpoint_gets_the_umask_mode(tmp_path, umask):
    """As mmengine's open(): 0666 & ~umask, not mkstemp's 0600."""
    old = os.umask(umask)
    try:
        _save(tmp_path / 'epoch_1.pth', 1.)
    finally:
        os.umask(old)
    assert _mode(tmp_path / 'epoch_1.pth') == 0o666 & ~umask


def test_overwritten_checkpoint_keeps_its_mode(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    _save(path, 1.)
    path.chmod(0o640)
    _save(path, 2.)
    assert _mode(path) == 0o640
    ckpt = CheckpointLoader.load_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.full((2, ), 2.))


def test_checkpoint_written_through_a_symlink(tmp_path):
    """The link stays a link; its target gets the new data, atomically
    (no temporary left beside the link or the target)."""
    store, work = tmp_path / 'store', tmp_path / 'work'
    store.mkdir(), work.mkdir()
    target, link = store / 'epoch_1.pth', work / 'epoch_1.pth'
    _save(target, 1.)
    target.chmod(0o604)
    link.symlink_to(target)
    _save(link, 2.)
    assert link.is_symlink() and link.resolve() == target
    assert _mode(target) == 0o604
    ckpt = CheckpointLoader.load_checkpoint(str(link))
    assert torch.equal(ckpt['state_dict']['w'], torch.full((2, ), 2.))
    assert [p.name for p in store.iterdir()] == ['epoch_1.pth']
    assert [p.name for p in work.iterdir()] == ['epoch_1.pth']


def test_source_build_shows_progress(tmp_path, capsys):
    """--mmcv-from-source prints files compiled of total and elapsed time
    (ninja's [k/n] lines, or one compiler command per file without ninja)
    instead of pip's 'still running...'; a failure shows the log's tail."""
    install = _install_module()
    ninja = ('import time\n'
             'for k in range(1, 4):\n'
             '    print(f"[{k}/3] c++ -c a{k}.cpp -o a{k}.o", flush=True)\n'
             '    time.sleep(0.05)\n')
    install.run_with_progress([sys.executable, '-c', ninja], None,
                              str(tmp_path / 'build.log'), total=99,
                              every_s=0.)
    out = capsys.readouterr().out
    assert 'mmcv build: compiled 3 of ~3 files' in out
    assert 'min elapsed' in out and 'mmcv build: done' in out
    assert (tmp_path / 'build.log').read_text().count('c++ -c') == 3
    plain = ('print("gcc -pthread -O2 -c x.cpp -o x.o")\n'
             'print("g++ -shared x.o -o x.so")\n')
    install.run_with_progress([sys.executable, '-c', plain], None,
                              str(tmp_path / 'build2.log'), total=5,
                              every_s=0.)
    assert 'compiled 1 of ~5 files' in capsys.readouterr().out
    with pytest.raises(subprocess.CalledProcessError):
        install.run_with_progress(
            [sys.executable, '-c', 'print("error: no nvcc"); exit(3)'], None,
            str(tmp_path / 'build3.log'), total=5, every_s=1e9)
    assert 'error: no nvcc' in capsys.readouterr().out
