import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# Subprocesses started by tests (tools/*.py, torchrun) find the packages too.
os.environ['PYTHONPATH'] = ROOT + (
    os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH')
    else '')

import projects  # noqa: E402,F401  (compatibility fixes first)
