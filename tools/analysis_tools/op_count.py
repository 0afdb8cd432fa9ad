"""Device-independent figures of a training step's framework overhead.

``count_ops(step)`` runs ``step()`` once under ``torch.profiler`` (CPU
activity only) and returns

- top-level aten ops: ops not called from inside another aten op; on a GPU
  roughly one kernel launch each, so their number bounds how fast the host
  can feed the device;
- host-sync ops: ``aten::nonzero`` and ``aten::_local_scalar_dense``
  (``.item()``, ``bool(tensor)``, ``int(tensor)``) at any depth; on a GPU
  each waits for the device to drain its queue.

Not counted: blocking host<->device copies (``tensor.to('cuda')``,
``new_tensor(list)`` on a CUDA tensor), which also synchronise but do not
occur when the step runs on a CPU.
"""
from typing import Callable, Tuple

SYNC_OPS = ('aten::nonzero', 'aten::_local_scalar_dense')


def count_ops(step: Callable[[], object]) -> Tuple[int, int]:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    top = syncs = 0
    for e in prof.events():
        if e.name in SYNC_OPS:
            syncs += 1
        parent = e.cpu_parent
        if e.name.startswith('aten::') and not (
                parent is not None and parent.name.startswith('aten::')):
            top += 1
    return top, syncs
