import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the repository (projects/) and the shared test helpers (tests/*.py); the
# tests mirror the package tree below tests/ (projects/launch is tested
# through the tools that use it: tests/tools, tests/projects/engine)
for path in (osp.join(ROOT, 'tests'), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
# Subprocesses started by tests (tools/*.py, torchrun) find the packages too.
os.environ['PYTHONPATH'] = ROOT + (
    os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH')
    else '')

import projects.compat  # noqa: E402,F401  (compatibility fixes first)

# isort: split

import contextlib  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test`: two workers on two cores, next to the tools they start
    # with one thread each (OMP_NUM_THREADS=1). torch's and OpenCV's own
    # thread pools (a thread per core each) would oversubscribe the cores;
    # the suite then took 13 min, an in-process ResNet-50 test 3-4x its
    # time alone (docs/testing.md).
    import cv2  # noqa: E402
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

# Tensor -> Python conversions that wait for a CUDA stream to drain.
HOST_SYNC_METHODS = ('item', 'tolist', 'numpy', '__bool__', '__float__',
                     '__int__', '__index__', 'nonzero')


@contextlib.contextmanager
def _no_host_sync():
    saved = {n: getattr(torch.Tensor, n) for n in HOST_SYNC_METHODS}

    def boom(name):

        def f(*args, **kwargs):
            raise AssertionError(f'host sync: Tensor.{name}')

        return f

    try:
        for n in HOST_SYNC_METHODS:
            setattr(torch.Tensor, n, boom(n))
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


@pytest.fixture
def no_host_sync():
    """Context manager failing on any host synchronisation inside it (on CPU
    these calls are cheap, so the test sees what a GPU run would pay)."""
    return _no_host_sync


@pytest.fixture(scope='session')
def transformers5_site(tmp_path_factory) -> str:
    """A site folder holding a transformers 5 stand-in
    (tests/data/transformers5) with its dist-info, to put on PYTHONPATH."""
    import shutil
    site = tmp_path_factory.mktemp('transformers5_site')
    shutil.copytree(osp.join(ROOT, 'tests', 'data', 'transformers5'),
                    site / 'transformers')
    info = site / 'transformers-5.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n')
    return str(site)
