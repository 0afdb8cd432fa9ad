"""Issue 15: orphan temporary checkpoint files, NonFiniteSkipOptimWrapper
under DDP (2 gloo processes), and a hung rank (SIGSTOP) ending the job
within the configured distributed timeout."""
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from process_helpers import ROOT, free_port, rank_pids

VICREG = osp.join(
    ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')


# ------------------------------------------------------ orphan temporaries
KILLED_WRITE = '''
import os, sys, time
sys.path.insert(0, {root!r})
import projects.compat.atomic_io as aio
# isort: split
real_fdopen = os.fdopen


class Stall:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        print('HALF', flush=True)
        time.sleep(600)


aio.os.fdopen = lambda fd, mode: Stall(real_fdopen(fd, mode))
aio.atomic_write(b'x' * 4096, {target!r})
'''


def test_orphan_temporary_from_killed_write_is_removed(tmp_path):
    from projects.compat.atomic_io import remove_orphan_temporaries
    target = tmp_path / 'epoch_2.pth'
    (tmp_path / 'epoch_1.pth').write_bytes(b'old')
    keep = ['epoch_1.pth', '.hidden', 'notes.tmp', '.a.tmp',
            '.epoch_1.pth.TOOLONGXX.tmp']
    for name in keep[1:]:
        (tmp_path / name).write_text('keep')
    script = tmp_path / 'killed_write.py'
    script.write_text(KILLED_WRITE.format(root=ROOT, target=str(target)))
    proc = subprocess.Popen([sys.executable, str(script)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'HALF'
    proc.kill()
    proc.wait(30)
    orphans = [n for n in os.listdir(tmp_path)
               if n.startswith('.epoch_2.pth.') and n.endswith('.tmp')]
    assert len(orphans) == 1 and not target.exists()  # negative control
    removed = remove_orphan_temporaries(tmp_path)
    assert [osp.basename(p) for p in removed] == orphans
    assert sorted(os.listdir(tmp_path)) == sorted(keep + [script.name])
    assert (tmp_path / 'epoch_1.pth').read_bytes() == b'old'


def test_preemption_hook_cleans_work_dir_at_start(tmp_path):
    from types import SimpleNamespace

    from projects.engine import PreemptionHook
    orphan = tmp_path / '.iter_7.pth.ab12cd34.tmp'
    orphan.write_bytes(b'partial')
    (tmp_path / 'resume_requested').write_text('x')
    hook = PreemptionHook()
    hook.before_train(SimpleNamespace(work_dir=str(tmp_path)))
    hook.after_train(None)
    assert not orphan.exists()
    assert not (tmp_path / 'resume_requested').exists()
    with pytest.raises(ValueError, match="unknown signal 'SIGFOO'"):
        PreemptionHook(signals=('SIGFOO', ))


# --------------------------------------- skipping optim wrapper, 2 processes
def _skip_worker(rank, port, agree, out_dir):
    """Rank ``rank`` of 2: 4 steps; rank 1's loss is NaN in step 2 only."""
    import datetime
    from types import SimpleNamespace

    import torch.distributed as dist
    from mmengine.logging import MessageHub
    from torch.nn.parallel import DistributedDataParallel as DDP

    from projects.engine import NonFiniteLossHook, NonFiniteSkipOptimWrapper
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=20))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                              torch.nn.Linear(8, 1))
    model = DDP(net, broadcast_buffers=False)
    wrapper = NonFiniteSkipOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1))
    if not agree:  # negative control: each rank decides alone
        wrapper._finite_everywhere = lambda loss: bool(torch.isfinite(loss))
    hook = NonFiniteLossHook()
    runner = SimpleNamespace(
        model=model, optim_wrapper=wrapper, iter=0, epoch=0,
        message_hub=MessageHub.get_instance(f'skip-{rank}-{agree}'))
    gen = torch.Generator().manual_seed(rank)
    params, result = [], {'error': None}
    try:
        for it in range(4):
            runner.iter = it
            before = [b.clone() for b in net[1].buffers()]
            # as mmengine's train_step: forward inside optim_context
            with wrapper.optim_context(model):
                loss = model(torch.randn(6, 4, generator=gen)).pow(2).mean()
            if rank == 1 and it == 1:
                loss = loss * float('nan')
            wrapper.update_params(loss)
            hook.after_train_iter(runner, it, outputs={'loss': loss})
            if it == 1:
                result['bn_restored'] = all(
                    torch.equal(a, b) for a, b in zip(before,
                                                      net[1].buffers()))
            params.append(torch.cat([p.detach().flatten()
                                     for p in net.parameters()]))
        result['skips'] = hook.total_skips
    except Exception as exc:  # the negative control may time out
        result['error'] = f'{type(exc).__name__}: {exc}'[:300]
    result['params'] = params
    torch.save(result, osp.join(out_dir, f'rank{rank}.pt'))
    os._exit(0)  # no teardown: a failed collective may still be pending


def _run_skip(tmp_path, agree):
    import torch.multiprocessing as mp
    out = tmp_path / ('agree' if agree else 'alone')
    out.mkdir()
    mp.start_processes(_skip_worker, args=(free_port(), agree, str(out)),
                       nprocs=2, join=True, start_method='spawn')
    return [torch.load(out / f'rank{r}.pt', weights_only=False)
            for r in (0, 1)]


def test_skip_mode_ddp_all_ranks_skip_together(tmp_path):
    r0, r1 = _run_skip(tmp_path, agree=True)
    assert r0['error'] is None and r1['error'] is None, (r0, r1)
    assert r0['skips'] == r1['skips'] == 1
    assert r0['bn_restored'] and r1['bn_restored']
    for a, b in zip(r0['params'], r1['params']):
        assert torch.equal(a, b)  # equal across ranks after every step
    assert torch.equal(r0['params'][0], r0['params'][1])  # step 2 skipped
    assert not torch.equal(r0['params'][1], r0['params'][2])
    assert all(torch.isfinite(p).all() for p in r0['params'])

    # negative control: without the all-reduce of the decision the ranks
    # fall out of step (rank 0 steps, rank 1 does not): DDP pairs different
    # iterations' gradients, the weights differ or a collective times out
    a0, a1 = _run_skip(tmp_path, agree=False)
    diverged = a0['error'] or a1['error'] or any(
        not torch.equal(x, y) for x, y in zip(a0['params'], a1['params']))
    print('negative control:', a0['error'] or a1['error'] or
          'weights differ across ranks')
    assert diverged, (a0, a1)


# -------------------------------------------------------- a hung rank
@pytest.mark.slow
def test_sigstop_rank_ends_job_within_timeout(tmp_path):
    from projects.vicreg.demo_data import write_demo_folder
    write_demo_folder(str(tmp_path / 'data'), num=16, size=40)
    timeout = 15
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()))
    work = tmp_path / 'work'
    cmd = ['bash', osp.join(ROOT, 'tools/dist_train.sh'), VICREG, '2',
           '--work-dir', str(work), '--cfg-options',
           f'train_dataloader.dataset.data_root={tmp_path / "data"}',
           f'train_dataloader.dataset.listing_cache={tmp_path / "cache"}',
           'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False',
           'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=1',
           f'env_cfg.dist_cfg.timeout={timeout}', 'train_cfg.max_epochs=1000']
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    lines, seen = [], {}

    def read():
        for ln in proc.stdout:
            lines.append(ln)
            if 'DistributedTimeoutError' in ln and 'error' not in seen:
                seen['error'] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ranks = {}
    try:
        end = time.monotonic() + 300
        # after the first epoch checkpoint (2 iterations per epoch)
        while not (work / 'last_checkpoint').exists():
            assert proc.poll() is None, ''.join(lines)[-3000:]
            assert time.monotonic() < end, ''.join(lines)[-3000:]
            time.sleep(0.1)
        ranks = rank_pids(proc.pid)
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGSTOP)
        t0 = time.monotonic()
        rc = proc.wait(timeout + 120)
        took = time.monotonic() - t0
    finally:
        for pid in ranks.values():  # ours: the stopped rank, if left
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    out = ''.join(lines)
    assert 'DistributedTimeoutError' in out, out[-4000:]
    error_after = seen['error'] - t0
    # torchrun then SIGTERMs the stopped rank, which cannot act on it, and
    # SIGKILLs it after its 30 s grace period
    print(f'rank 1 stopped: error after {error_after:.1f} s, job ended '
          f'(exit {rc}) after {took:.1f} s, timeout {timeout} s')
    assert rc != 0
    assert error_after < timeout + 20, out[-3000:]
    assert f'timed out after {timeout} s (env_cfg.dist_cfg.timeout)' in out
    assert took < timeout + 60, out[-3000:]
    from mmengine.runner import CheckpointLoader
    last = (work / 'last_checkpoint').read_text().strip()
    assert f'last checkpoint: {last}' in out
    CheckpointLoader.load_checkpoint(last)  # intact


# ------------------------------------------------ process-group teardown
def _teardown_worker(rank, port, close, out_dir):
    import torch.distributed as dist

    from projects.launch import close_distributed
    dist.init_process_group('gloo', rank=rank, world_size=2,
                            init_method=f'tcp://127.0.0.1:{port}')
    value = torch.ones(4)
    dist.all_reduce(value)
    if close:
        close_distributed(completed=True)
    with open(osp.join(out_dir, f'rank{rank}.txt'), 'w') as f:
        f.write(f'{value[0].item()} {dist.is_initialized()}')
    if not close:  # leave no process group behind either way
        dist.destroy_process_group()


@pytest.mark.parametrize('close', [True, False])
def test_tools_tear_the_process_group_down(tmp_path, close):
    """tools/train.py and tools/test.py drop the runner (its DDP wrapper
    holds the group) and call close_distributed: the gloo group is gone
    before the interpreter exits, where its worker threads abort the process
    now and then (SIGABRT, seen in CI torchrun runs). Negative control:
    without it the group is still up at the end."""
    import torch.multiprocessing as mp
    mp.spawn(_teardown_worker, args=(free_port(), close, str(tmp_path)),
             nprocs=2, join=True, start_method='spawn')
    for rank in range(2):
        total, up = open(tmp_path / f'rank{rank}.txt').read().split()
        assert float(total) == 2.0
        assert up == str(not close)
    for tool in ('train.py', 'test.py'):
        text = open(osp.join(ROOT, 'tools', tool)).read()
        assert ('finally:\n        del runner  # its DDP wrapper holds the '
                'process group\n        close_distributed(completed)'
                in text), tool
