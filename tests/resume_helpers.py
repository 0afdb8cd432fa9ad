"""Helpers for the exact-resume tests: a tools/train.py process, and the
bit-for-bit comparison of two final checkpoints."""
import os
import os.path as osp
import subprocess
import sys
import threading
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class Train:
    """tools/train.py with its output read line by line."""

    def __init__(self, args):
        env = dict(os.environ, OMP_NUM_THREADS='1')
        self.proc = subprocess.Popen(
            [sys.executable, '-u', osp.join(ROOT, 'tools/train.py'),
             *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def iters(self):
        return sum('Epoch(train)' in ln for ln in self.lines)

    def wait_iters(self, n, timeout=600):
        end = time.monotonic() + timeout
        while self.iters() < n:
            assert self.proc.poll() is None, self.output()[-4000:]
            assert time.monotonic() < end, self.output()[-4000:]
            time.sleep(0.01)

    def finish(self, timeout=900):
        rc = self.proc.wait(timeout)
        self.thread.join(10)
        return rc

    def output(self):
        return ''.join(self.lines)


def final_state(work, epochs):
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(str(work / f'epoch_{epochs}.pth'))
    return ckpt


def assert_same(a, b):
    """Weights/buffers and optimizer state equal bit for bit."""
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    diff = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not diff, f'{len(diff)}/{len(sa)} tensors differ, e.g. {diff[:3]}'
    oa, ob = a['optimizer']['state'], b['optimizer']['state']
    assert oa.keys() == ob.keys()
    for k in oa:
        for name, v in oa[k].items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, ob[k][name]), (k, name)
    assert a['meta']['iter'] == b['meta']['iter']


def max_abs_diff(a, b):
    return max(float((a['state_dict'][k].double() -
                      b['state_dict'][k].double()).abs().max())
               for k in a['state_dict']
               if a['state_dict'][k].is_floating_point())
