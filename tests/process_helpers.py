"""Helpers for tests that start processes: a free port, the ranks of a
torchrun, a tool run from the repository root."""
import os
import os.path as osp
import socket
import subprocess

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def free_port() -> int:
    """A TCP port nobody listens on now (for MASTER_PORT / PORT)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def rank_pids(parent: int) -> dict:
    """{RANK: pid} of the worker processes of a torchrun we started."""
    ranks = {}
    try:
        kids = open(f'/proc/{parent}/task/{parent}/children').read().split()
    except OSError:
        return ranks
    for pid in map(int, kids):
        try:
            env = open(f'/proc/{pid}/environ', 'rb').read().split(b'\0')
        except OSError:
            continue
        for item in env:
            if item.startswith(b'RANK='):
                ranks[int(item[5:])] = pid
    return ranks


def run_ok(cmd, timeout: float = 900, **env) -> str:
    """Run ``cmd`` in the repository root with one intra-op thread; assert
    it succeeded; return its output (stdout + stderr)."""
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, OMP_NUM_THREADS='1', **env))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]
    return log
