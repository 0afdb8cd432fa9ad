"""The install as a user's interpreter sees it: the start-up hook
(``vicreg_det_startup.pth``) that serves ``mmcv._ext`` to mmdet's own APIs,
``projects`` as a namespace package, and the dependencies pyproject.toml
declares.

The subprocesses run outside the repository with no PYTHONPATH, so they see
only what the install put in site-packages."""
import os
import os.path as osp
import subprocess
import sys
import textwrap
import tomllib

import pytest
from process_helpers import ROOT

from projects.compat import mmcv_ops

SITE_ONLY = {'PYTHONPATH': None}


def _python(code: str, cwd, check: bool = True, **env):
    environ = dict(os.environ)
    for key, value in {**SITE_ONLY, **env}.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    res = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                         cwd=cwd, env=environ, text=True,
                         capture_output=True)
    if check:
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


# ------------------------------------------------------------ start-up hook
def test_startup_hook_is_registered_and_imports_nothing_heavy(tmp_path):
    out = _python('''
        import sys
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in (
            'torch', 'torchvision', 'numpy', 'mmcv', 'mmengine', 'mmdet',
            'projects'))
        print(heavy)
        print([type(f).__name__ for f in sys.meta_path])
    ''', tmp_path).stdout.splitlines()
    assert out[0] == '[]'
    assert 'LazyExtFinder' in out[1]


def test_mmdet_and_mmcv_ops_work_without_importing_the_project(tmp_path):
    out = _python('''
        import sys
        from mmdet.apis import DetInferencer  # noqa: F401
        from mmcv.ops import nms
        import torch
        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10],
                              [20, 20, 30, 30.]])
        print(nms(boxes, torch.tensor([.9, .8, .7]), 0.5)[1].tolist())
        from projects.compat import ops_backend
        print(ops_backend())
    ''', tmp_path).stdout.splitlines()
    assert out[0] == '[0, 2]'
    assert out[1] in ('torchvision', 'compiled')


@pytest.mark.skipif(mmcv_ops.ops_backend() == 'compiled',
                    reason='a compiled mmcv._ext is installed')
def test_startup_hook_can_be_turned_off(tmp_path):
    res = _python('import mmcv.ops', tmp_path, check=False,
                  VICREG_DET_STARTUP_HOOK='0')
    assert res.returncode != 0
    assert "No module named 'mmcv._ext'" in res.stderr


@pytest.mark.slow
def test_startup_line_is_silent_when_the_checkout_is_gone(tmp_path):
    """An editable install whose checkout was deleted: the .pth line must
    not print a traceback at every interpreter start (negative control: the
    plain ``import`` line does)."""
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        from build_hooks import PTH_LINE
    finally:
        sys.path.pop(0)
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    code = f'''
        import site, sys
        sys.modules['vicreg_det_startup'] = None  # not importable
        site.addsitedir({str(site_dir)!r})
        print('started')
    '''
    (site_dir / 'hook.pth').write_text(PTH_LINE)
    res = _python(code, tmp_path)
    assert res.stdout.strip() == 'started' and res.stderr == '', res.stderr
    (site_dir / 'hook.pth').write_text(
        'import vicreg_det_startup; vicreg_det_startup.install()\n')
    res = _python(code, tmp_path)
    assert 'Error processing line 1' in res.stderr, res.stderr


def test_det_inferencer_runs_the_demo_detector(tmp_path):
    """mmdet's DetInferencer on the demo detector config and a randomly
    initialised checkpoint, in a process that imports mmdet first."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import save_checkpoint

    from projects.detection import CLASSES
    config = osp.join(ROOT, 'configs', 'faster_rcnn', 'faster-rcnn_r18-'
                      'scratch_fpn_1xb4-2e_competition-demo.py')
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    weights = str(tmp_path / 'random.pth')
    record = tmp_path / 'ops.txt'
    save_checkpoint(dict(state_dict=model.state_dict(),
                         meta=dict(dataset_meta=dict(classes=CLASSES))),
                    weights)
    out = _python(f'''
        import sys
        from mmdet.apis import DetInferencer
        assert 'projects.detection' not in sys.modules
        import numpy as np
        image = np.random.default_rng(0).integers(
            0, 256, (120, 160, 3), dtype=np.uint8)
        inferencer = DetInferencer({config!r}, {weights!r}, device='cpu',
                                   show_progress=False)
        pred = inferencer(image)['predictions'][0]
        from projects.compat import ops_backend
        print('RESULT', len(pred['bboxes']), len(pred['labels']),
              ops_backend(), inferencer.model.dataset_meta['classes'][0])
    ''', tmp_path, **{mmcv_ops.RECORD_ENV: str(record)}).stdout
    result = [ln for ln in out.splitlines() if ln.startswith('RESULT ')]
    assert result, out[-2000:]
    # a random detector keeps no box above the score threshold; the RPN's
    # NMS and the RoI head's RoIAlign ran all the same
    n_boxes, n_labels, backend, first_class = result[0].split(None, 4)[1:]
    assert n_boxes == n_labels
    assert backend in ('torchvision', 'compiled')
    assert first_class == CLASSES[0]
    assert set(record.read_text().split()) == {'nms', 'roi_align_forward'}


def test_recording_with_the_project_imported_first(tmp_path):
    """tools/train.py's order: projects.compat first, so its recording
    finder asks the start-up hook's finder, which hands the question back
    (once recursed without end)."""
    record = tmp_path / 'ops.txt'
    out = _python('''
        import projects.compat
        import torch
        from mmcv.ops import nms
        boxes = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30.]])
        print(nms(boxes, torch.tensor([.9, .8]), 0.5)[1].tolist())
    ''', tmp_path, **{mmcv_ops.RECORD_ENV: str(record)}).stdout
    assert out.split() == ['[0,', '1]']
    assert record.read_text().split() == ['nms']


# -------------------------------------------------------- namespace package
def test_projects_is_a_namespace_package_shared_with_others(tmp_path):
    assert not osp.exists(osp.join(ROOT, 'projects', '__init__.py'))
    other = tmp_path / 'other' / 'projects' / 'other_pkg'
    other.mkdir(parents=True)
    (other / '__init__.py').write_text('NAME = "other"\n')
    out = _python('''
        import projects.other_pkg
        import projects.compat
        import projects
        print(projects.other_pkg.NAME, projects.compat.ops_backend())
        print(len(list(projects.__path__)))
    ''', tmp_path, PYTHONPATH=str(tmp_path / 'other')).stdout.splitlines()
    assert out[0].split()[0] == 'other'
    assert int(out[1]) >= 2


# -------------------------------------------------------------- dependencies
def _pyproject() -> dict:
    with open(osp.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)


def _requirements(name: str) -> list:
    with open(osp.join(ROOT, 'requirements', name)) as f:
        lines = (ln.split('#', 1)[0].strip() for ln in f)
        return [ln for ln in lines if ln]


def test_declared_dependencies_match_the_requirements_files():
    """pip install -e . gets what tools/install.py installs, except torch."""
    project = _pyproject()['project']
    deps = project['dependencies']
    for line in _requirements('runtime.txt') + _requirements('mminstall.txt'):
        assert line in deps, line
    assert 'mmcv-lite==2.1.0' in deps
    names = {d.split('=')[0].split('<')[0].split('>')[0].lower()
             for d in deps}
    assert not names & {'torch', 'torchvision'}  # never an unpinned torch
    assert project['optional-dependencies']['tests'] == _requirements(
        'tests.txt')
