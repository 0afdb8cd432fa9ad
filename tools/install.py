#!/usr/bin/env python
"""Install (or check) the whole stack into the current Python environment.

Idempotent: every step first checks what is installed and does nothing when it
is already right, so a second run takes seconds. Steps:

1. torch   - keep the user's torch if it is in the supported range
             (TORCH_RANGE; refused otherwise, VICREG_DET_ANY_TORCH=1 to try
             anyway); install requirements/torch.txt only if none is
             installed (torchvision is matched to the torch present).
             torch < 2.3 is built against numpy 1: numpy is kept < 2 there
             (TORCH_CONSTRAINTS, applied to every later step).
2. runtime - requirements/runtime.txt and requirements/tests.txt.
3. mmcv    - by default ``mmcv-lite`` 2.1.0: mmcv's Python package without
             its compiled ``mmcv._ext``, which projects/compat serves on
             torchvision's kernels (the only compiled ops this project uses).
             Nothing is compiled. A compiled mmcv 2.1.0 that is already
             installed is kept (and used). ``--mmcv-from-source`` builds the
             compiled one from the official sdist instead (every mmcv op;
             C++20 from torch 2.10, CUDA ops where CUDA is available or
             FORCE_CUDA=1, honours TORCH_CUDA_ARCH_LIST and MAX_JOBS; the
             wheel is cached per torch/CUDA build; MMCV_WHEEL=path installs a
             prebuilt wheel), showing files compiled and elapsed time.
4. mm      - mmengine, mmdet, mmpretrain (requirements/mminstall.txt).
5. project - this repository's ``projects`` namespace package, editable
             (``pip install -e . --no-deps --no-build-isolation``, after
             installing the build requirements of pyproject.toml), so every
             tool, test and config import finds it without path
             manipulation; with it the start-up hook
             (``vicreg_det_startup.pth``) that lets any interpreter of the
             environment import ``mmcv.ops`` on the torchvision kernels.
6. verify  - in a fresh interpreter that does not import the project:
             mmcv.ops runs (nms, RoIAlign; on CUDA too where available) and
             mmdet/mmpretrain import; prints a one-line summary that names
             the mmcv ops backend.

Every pip call is constrained to the installed torch/torchvision, so no step
can pull another (multi-GB) torch.
"""
import argparse
import glob
import importlib.metadata as md
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from contextlib import contextmanager
from urllib.parse import unquote, urlparse

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REQ = osp.join(ROOT, 'requirements')
CACHE = os.environ.get('VICREG_DET_CACHE',
                       osp.join(osp.expanduser('~'), '.cache', 'vicreg-det'))
MMCV_VERSION = '2.1.0'
# Supported torch: [low, high), the oldest and newest the fast tests ran on
# (docs/install.md, Supported torch).
TORCH_RANGE = ('2.1', '2.15')
ANY_TORCH_ENV = 'VICREG_DET_ANY_TORCH'
# (torch below this version, requirement) pins for every pip call: torch
# < 2.3 is built against numpy 1, and opencv-python 5 pulls numpy 2 in.
TORCH_CONSTRAINTS = [('2.3', 'numpy<2')]

FIXES = {
    'torch': f'install a torch in [{TORCH_RANGE[0]}, {TORCH_RANGE[1]}) for '
             'your platform first (https://pytorch.org), or check network '
             f'access to PyPI; {ANY_TORCH_ENV}=1 tries an unsupported torch',
    'runtime': 'check network access to PyPI',
    'mmcv': 'check network access to PyPI. With --mmcv-from-source: a C++ '
            'compiler (g++ >= 10) and the Python headers are needed; for CUDA '
            'ops also nvcc matching torch.version.cuda. The build log is '
            'above. To reuse a prebuilt wheel: MMCV_WHEEL=/path/to/whl',
    'mm': 'check network access to PyPI',
    'project': 'run `pip install --no-deps --no-build-isolation -e .` in '
               'the repository root and read its error (it needs the '
               '[build-system] requires of pyproject.toml installed)',
    'verify': 'if a compiled mmcv no longer loads with this torch: '
              '`pip uninstall mmcv` and rerun (mmcv-lite), or rerun with '
              '--mmcv-from-source to rebuild it against this torch',
}


class StepError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f'[install] {msg}', flush=True)


@contextmanager
def step(name: str):
    start = time.time()
    try:
        yield
    except (subprocess.CalledProcessError, StepError, OSError) as err:
        log(f'FAILED at step "{name}": {err}')
        log(f'fix: {FIXES[name]}')
        sys.exit(1)
    log(f'{name}: ok ({time.time() - start:.1f} s)')


def run(cmd, **kwargs) -> None:
    log('$ ' + ' '.join(cmd))
    subprocess.run(cmd, check=True, **kwargs)


def version(dist: str):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def unsatisfied(req_file: str) -> list:
    """Requirement lines of ``req_file`` that the environment lacks."""
    with open(req_file) as f:
        return unsatisfied_lines(f)


def unsatisfied_lines(lines) -> list:
    """The requirements among ``lines`` that the environment lacks."""
    from packaging.requirements import Requirement
    missing = []
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        have = version(req.name)
        if have is None or (req.specifier and not req.specifier.contains(
                have, prereleases=True)):
            missing.append(line)
    return missing


class Pip:
    """pip in this interpreter, pinned to the installed torch."""

    def __init__(self):
        self.constraints = osp.join(tempfile.mkdtemp(), 'constraints.txt')
        self.refresh()

    def refresh(self) -> None:
        with open(self.constraints, 'w') as f:
            for dist in ('torch', 'torchvision'):
                if version(dist):
                    f.write(f'{dist}=={version(dist)}\n')
            for line in torch_constraints(version('torch')):
                f.write(line + '\n')

    def install(self, *args: str) -> None:
        run([sys.executable, '-m', 'pip', 'install', '-c', self.constraints,
             *args])

    def install_missing(self, req_file: str) -> None:
        missing = unsatisfied(req_file)
        if missing:
            self.install(*missing)
        else:
            log(f'{osp.relpath(req_file, ROOT)}: already satisfied')

    def install_missing_lines(self, lines, what: str) -> None:
        missing = unsatisfied_lines(lines)
        if missing:
            self.install(*missing)
        else:
            log(f'{what}: already satisfied')


def torch_constraints(torch_version) -> list:
    """The TORCH_CONSTRAINTS requirement lines that apply to this torch."""
    if torch_version is None:
        return []

    def minor(v: str) -> tuple:  # before `packaging` may be installed
        return tuple(int(n) for n in re.match(r'(\d+)\.(\d+)', v).groups())

    return [req for below, req in TORCH_CONSTRAINTS
            if minor(torch_version) < minor(below)]


def torch_info() -> dict:
    import torch
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    return dict(torch=torch.__version__.split('+')[0], cuda=cuda,
                torch_cuda=torch.version.cuda)


def check_torch_range(torch_version: str) -> None:
    from packaging.version import Version
    have = Version(torch_version.split('+')[0])
    low, high = (Version(v) for v in TORCH_RANGE)
    if low <= have < high:
        return
    message = (f'torch {torch_version} is outside the supported range '
               f'[{TORCH_RANGE[0]}, {TORCH_RANGE[1]})')
    if os.environ.get(ANY_TORCH_ENV) == '1':
        log(f'WARNING: {message}; continuing because {ANY_TORCH_ENV}=1')
        return
    raise StepError(message)


def mmcv_ops_ok() -> bool:
    """mmcv 2.1.0 is installed and its compiled ops load in this torch."""
    if version('mmcv') != MMCV_VERSION:
        return False
    probe = ('import torch; from mmcv.ops import nms; '
             'nms(torch.rand(4, 4) + torch.tensor([0, 0, 1, 1.]), '
             'torch.rand(4), 0.5)')
    return subprocess.run([sys.executable, '-c', probe],
                          capture_output=True).returncode == 0


def want_cuda(info: dict) -> bool:
    return bool(info['cuda']) or os.environ.get('FORCE_CUDA') == '1'


def build_mmcv(pip: Pip, info: dict) -> str:
    """Build (or reuse from the cache) an mmcv wheel for this torch."""
    from packaging.version import Version
    cuda = want_cuda(info)
    tag = f"torch{info['torch']}-" + (
        f"cu{info['torch_cuda']}" if cuda else 'cpu')
    out = osp.join(CACHE, f'mmcv-{MMCV_VERSION}-{tag}')
    cached = glob.glob(osp.join(out, 'mmcv-*.whl'))
    if cached:
        log(f'reusing cached mmcv wheel {cached[0]}')
        return cached[0]
    work = tempfile.mkdtemp(prefix='mmcv-build-')
    # --no-build-isolation: the sdist's metadata step imports torch.
    run([sys.executable, '-m', 'pip', 'download', '--no-deps',
         '--no-binary', ':all:', '--no-build-isolation', '-d', work,
         f'mmcv=={MMCV_VERSION}'])
    with tarfile.open(glob.glob(osp.join(work, 'mmcv-*.tar.gz'))[0]) as tar:
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(work, filter='data')
        else:  # Python < 3.10.12 has no extraction filters
            tar.extractall(work)
    src = osp.join(work, f'mmcv-{MMCV_VERSION}')
    setup_py = osp.join(src, 'setup.py')
    if Version(info['torch']) >= Version('2.10'):
        # torch >= 2.10 headers refuse anything below C++20; mmcv hard-codes
        # -std=c++17 (cxx and nvcc). Raise it in our copy of the sdist.
        with open(setup_py) as f:
            text = f.read()
        with open(setup_py, 'w') as f:
            f.write(text.replace("'-std=c++17'", "'-std=c++20'"))
        log('raised the C++ standard to C++20 for this torch')
    env = dict(os.environ, MMCV_WITH_OPS='1')
    env.setdefault('MAX_JOBS', str(os.cpu_count() or 1))
    if cuda:
        env['FORCE_CUDA'] = '1'
    sources = glob.glob(osp.join(src, 'mmcv', 'ops', 'csrc', '**', '*.cpp'),
                        recursive=True)
    if cuda:
        sources += glob.glob(osp.join(src, 'mmcv', 'ops', 'csrc', '**',
                                      '*.cu'), recursive=True)
    log(f"building mmcv {MMCV_VERSION} with {'CUDA' if cuda else 'CPU'} ops "
        f"(MAX_JOBS={env['MAX_JOBS']}); about 30 minutes on 2 cores")
    os.makedirs(out, exist_ok=True)
    build_log = osp.join(out, 'build.log')
    run_with_progress([sys.executable, '-m', 'pip', 'wheel', '-v', '--no-deps',
                       '--no-build-isolation', '-w', out, src], env,
                      build_log, total=len(sources))
    shutil.rmtree(work, ignore_errors=True)
    return glob.glob(osp.join(out, 'mmcv-*.whl'))[0]


# a compiler invocation for one source file: ninja's "[k/n] ..." or, without
# ninja, setuptools' "gcc/c++/nvcc ... -c file"
_NINJA_STEP = re.compile(r'^\[(\d+)/(\d+)\]')
_COMPILE = re.compile(r'^\S*(gcc|g\+\+|c\+\+|cc|nvcc)\s.*\s-c\s')


def run_with_progress(cmd, env, log_path: str, total: int,
                      every_s: float = 20.) -> None:
    """Run a build, teeing its output to ``log_path`` and printing
    'compiled k of n files, m min elapsed' instead of pip's 'still
    running...'."""
    log('$ ' + ' '.join(cmd) + f'  (full log: {log_path})')
    started = last = time.time()
    done = 0
    with open(log_path, 'w') as out, subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1) as proc:
        for line in proc.stdout:
            out.write(line)
            out.flush()  # the log can be followed while the build runs
            step_match = _NINJA_STEP.match(line.strip())
            if step_match:
                done, total = int(step_match[1]), int(step_match[2])
            elif _COMPILE.match(line.strip()):
                done += 1
            now = time.time()
            if now - last >= every_s:
                last = now
                log(f'mmcv build: compiled {done} of ~{total} files, '
                    f'{(now - started) / 60:.1f} min elapsed')
    if proc.returncode != 0:
        with open(log_path) as f:
            print(''.join(f.readlines()[-40:]), end='')
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    log(f'mmcv build: done, {(time.time() - started) / 60:.1f} min')


def install_mmcv(pip: 'Pip', from_source: bool) -> None:
    """mmcv-lite by default; the compiled build with ``from_source``."""
    if from_source:
        wheel = os.environ.get('MMCV_WHEEL') or build_mmcv(pip, torch_info())
        if version('mmcv-lite'):  # both own site-packages/mmcv
            run([sys.executable, '-m', 'pip', 'uninstall', '-y', 'mmcv-lite'])
        pip.install('--no-deps', '--force-reinstall', wheel)
        # mmcv's own pure-Python dependencies
        pip.install('addict', 'packaging', 'yapf', 'opencv-python',
                    'Pillow', 'PyYAML', 'numpy')
    elif mmcv_ops_ok():
        log(f'compiled mmcv {MMCV_VERSION} installed: keeping it (its ops '
            'are used)')
    elif version('mmcv-lite') == MMCV_VERSION and not version('mmcv'):
        log(f'mmcv-lite {MMCV_VERSION} already installed')
    else:
        if version('mmcv'):  # a compiled mmcv that no longer loads
            run([sys.executable, '-m', 'pip', 'uninstall', '-y', 'mmcv'])
            if version('mmcv-lite'):  # its files went with mmcv's
                pip.install('--force-reinstall', '--no-deps',
                            f'mmcv-lite=={MMCV_VERSION}')
        pip.install(f'mmcv-lite=={MMCV_VERSION}')


def pyproject() -> dict:
    with open(osp.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)


def installed_from_here(project: dict) -> bool:
    """vicreg-det of this pyproject's version is installed editable from this
    checkout, start-up hook included."""
    # every match: with the checkout on sys.path (PYTHONPATH) the build's
    # vicreg_det.egg-info there (older setuptools) is found first
    for dist in md.distributions(name=project['name']):
        url = json.loads(dist.read_text('direct_url.json') or '{}')
        path = unquote(urlparse(url.get('url', '')).path)
        if (dist.version == project['version']
                and url.get('dir_info', {}).get('editable', False)
                and osp.realpath(path) == osp.realpath(ROOT)
                and any(f.name == 'vicreg_det_startup.pth'
                        for f in dist.files or [])):
            return True
    return False


def install_project(pip: 'Pip') -> None:
    """This checkout's ``projects`` package, editable (idempotent)."""
    config = pyproject()
    if installed_from_here(config['project']):
        log(f'vicreg-det {config["project"]["version"]} already installed '
            f'from {ROOT}')
        return
    # --no-build-isolation builds with this environment's setuptools (no
    # index needed), which must then meet the build requirements: Python
    # 3.11's venv brings setuptools 65.5 without `wheel` (no bdist_wheel).
    pip.install_missing_lines(config['build-system']['requires'],
                              'build requirements (pyproject.toml)')
    pip.install('--no-deps', '--no-build-isolation', '-e', ROOT)


# Run in a fresh interpreter that imports mmcv.ops before the project: the
# start-up hook (vicreg_det_startup.pth) must serve mmcv._ext by itself.
VERIFY = r'''
import sys, torch
from mmcv.ops import nms, RoIAlign
import mmcv, mmengine, mmdet, mmpretrain
from projects.compat import ops_backend
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.]])
scores = torch.tensor([0.9, 0.8, 0.7])
devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
for dev in devices:
    keep = nms(boxes.to(dev), scores.to(dev), 0.5)[1]
    assert keep.tolist() == [0, 2], (dev, keep)
    feat = torch.arange(16.).view(1, 1, 4, 4).to(dev)
    roi = torch.tensor([[0, 0, 0, 3, 3.]]).to(dev)
    assert RoIAlign((1, 1), 1.0, 0)(feat, roi).shape == (1, 1, 1, 1)
import mmdet.models, mmpretrain.models  # noqa
ops = ops_backend() + ' ' + '+'.join(d.upper() for d in devices)
print(f'python {sys.version.split()[0]} | torch {torch.__version__} '
      f'(CUDA {torch.version.cuda if torch.cuda.is_available() else "none"})'
      f' | mmcv {mmcv.__version__} ops {ops} | mmengine {mmengine.__version__}'
      f' | mmdet {mmdet.__version__} | mmpretrain {mmpretrain.__version__}')
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mmcv-from-source', action='store_true',
                        help='build compiled mmcv from the official sdist '
                        '(every mmcv op; ~30 min on 2 cores) instead of '
                        'mmcv-lite + torchvision kernels')
    parser.add_argument('--check', action='store_true',
                        help='only run the verification step')
    args = parser.parse_args()
    started = time.time()
    if not args.check:
        with step('torch'):
            pip = Pip()
            if version('packaging') is None:  # needed to read requirements
                pip.install('packaging')
            if version('torch') is None:
                pip.install('-r', osp.join(REQ, 'torch.txt'))
            elif version('torchvision') is None:
                pip.install('torchvision')  # constrained to this torch
            check_torch_range(version('torch'))
            pip.refresh()
            # e.g. numpy 2, pulled in by torchvision, under a torch < 2.3
            pip.install_missing_lines(torch_constraints(version('torch')),
                                      'torch constraints')
            log(f"torch {version('torch')}, torchvision "
                f"{version('torchvision')}")
        with step('runtime'):
            pip.install_missing(osp.join(REQ, 'runtime.txt'))
            pip.install_missing(osp.join(REQ, 'tests.txt'))
        with step('mmcv'):
            if args.mmcv_from_source:
                pip.install_missing(osp.join(REQ, 'build.txt'))
            install_mmcv(pip, args.mmcv_from_source)
        with step('mm'):
            pip.install_missing(osp.join(REQ, 'mminstall.txt'))
        with step('project'):
            install_project(pip)
    with step('verify'):
        out = subprocess.run([sys.executable, '-c', VERIFY],
                             capture_output=True, text=True,
                             cwd=tempfile.gettempdir())
        if out.returncode != 0:
            raise StepError(out.stderr.strip().splitlines()[-1])
        print(out.stdout.strip())
    log(f'done in {time.time() - started:.0f} s')


if __name__ == '__main__':
    main()
