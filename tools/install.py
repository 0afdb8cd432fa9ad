#!/usr/bin/env python
"""Install (or check) the whole stack into the current Python environment.

Idempotent: every step first checks what is installed and does nothing when it
is already right, so a second run takes seconds. Steps:

1. torch   - keep the user's torch; install requirements/torch.txt only if
             none is installed (torchvision is matched to the torch present).
2. build   - setuptools < 81 (pkg_resources), wheel, ninja.
3. runtime - requirements/runtime.txt and requirements/tests.txt.
4. mmcv    - mmcv 2.1.0 with compiled ops. It has no wheel for torch >= 2.2,
             so it is built from the official sdist with the C++ standard the
             installed torch needs (C++20 from torch 2.10), with CUDA ops where
             CUDA is available or FORCE_CUDA=1 (honours TORCH_CUDA_ARCH_LIST
             and MAX_JOBS), CPU ops otherwise. The wheel is cached per
             torch/CUDA build, so a new virtualenv reuses it. MMCV_WHEEL=path
             installs a prebuilt wheel instead.
5. mm      - mmengine, mmdet, mmpretrain (requirements/mminstall.txt).
6. verify  - mmcv.ops runs (nms, RoIAlign; on CUDA too where available) and
             mmdet/mmpretrain import; prints a one-line summary.

Every pip call is constrained to the installed torch/torchvision, so no step
can pull another (multi-GB) torch.
"""
import argparse
import glob
import importlib.metadata as md
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REQ = osp.join(ROOT, 'requirements')
CACHE = os.environ.get('VICREG_DET_CACHE',
                       osp.join(osp.expanduser('~'), '.cache', 'vicreg-det'))
MMCV_VERSION = '2.1.0'

FIXES = {
    'torch': 'install a torch wheel for your platform first '
             '(https://pytorch.org), or check network access to PyPI',
    'build': 'check network access to PyPI',
    'runtime': 'check network access to PyPI',
    'mmcv': 'a C++ compiler (g++ >= 10) and the Python headers are needed; '
            'for CUDA ops also nvcc matching torch.version.cuda. The build log '
            'is above. To reuse a prebuilt wheel: MMCV_WHEEL=/path/to/whl',
    'mm': 'check network access to PyPI',
    'verify': 'rerun with --rebuild-mmcv to rebuild mmcv against this torch',
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
    from packaging.requirements import Requirement
    missing = []
    with open(req_file) as f:
        for line in f:
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

    def install(self, *args: str) -> None:
        run([sys.executable, '-m', 'pip', 'install', '-c', self.constraints,
             *args])

    def install_missing(self, req_file: str) -> None:
        missing = unsatisfied(req_file)
        if missing:
            self.install(*missing)
        else:
            log(f'{osp.relpath(req_file, ROOT)}: already satisfied')


def torch_info() -> dict:
    import torch
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    return dict(torch=torch.__version__.split('+')[0], cuda=cuda,
                torch_cuda=torch.version.cuda)


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
    log(f"building mmcv {MMCV_VERSION} with {'CUDA' if cuda else 'CPU'} ops "
        f"(MAX_JOBS={env['MAX_JOBS']}); this takes minutes")
    os.makedirs(out, exist_ok=True)
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '-w', out, src], env=env)
    shutil.rmtree(work, ignore_errors=True)
    return glob.glob(osp.join(out, 'mmcv-*.whl'))[0]


VERIFY = r'''
import sys, torch
sys.path.insert(0, sys.argv[1])
import projects  # compatibility fixes
import mmcv, mmengine, mmdet, mmpretrain
from mmcv.ops import nms, RoIAlign
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
ops = '+'.join(d.upper() for d in devices)
print(f'python {sys.version.split()[0]} | torch {torch.__version__} '
      f'(CUDA {torch.version.cuda if torch.cuda.is_available() else "none"})'
      f' | mmcv {mmcv.__version__} ops {ops} | mmengine {mmengine.__version__}'
      f' | mmdet {mmdet.__version__} | mmpretrain {mmpretrain.__version__}')
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rebuild-mmcv', action='store_true',
                        help='rebuild mmcv even if one is installed')
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
            pip.refresh()
            log(f"torch {version('torch')}, torchvision "
                f"{version('torchvision')}")
        with step('build'):
            pip.install_missing(osp.join(REQ, 'build.txt'))
        with step('runtime'):
            pip.install_missing(osp.join(REQ, 'runtime.txt'))
            pip.install_missing(osp.join(REQ, 'tests.txt'))
        with step('mmcv'):
            if args.rebuild_mmcv or not mmcv_ops_ok():
                wheel = os.environ.get('MMCV_WHEEL') or build_mmcv(
                    pip, torch_info())
                pip.install('--no-deps', '--force-reinstall', wheel)
                # mmcv's own pure-Python dependencies
                pip.install('addict', 'packaging', 'yapf', 'opencv-python',
                            'Pillow', 'PyYAML', 'numpy')
            else:
                log(f'mmcv {MMCV_VERSION} with compiled ops already installed')
        with step('mm'):
            pip.install_missing(osp.join(REQ, 'mminstall.txt'))
    with step('verify'):
        out = subprocess.run([sys.executable, '-c', VERIFY, ROOT],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise StepError(out.stderr.strip().splitlines()[-1])
        print(out.stdout.strip())
    log(f'done in {time.time() - started:.0f} s')


if __name__ == '__main__':
    main()
