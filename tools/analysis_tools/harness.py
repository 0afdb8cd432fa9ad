"""What every ``bench_*.py`` shares: ``--small``/full presets, the device,
interleaved timing, JSON lines and the ratio line.

Sides are timed in alternating order round by round (A B, B A, ...), so
neither always runs right after the other (warm caches, clock boost), and
the median over rounds is reported.
"""
import argparse
import json
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

median = statistics.median


def make_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--small`` (the reduced CPU mode the tests
    run) described by the first line of the benchmark's docstring."""
    parser = argparse.ArgumentParser(description=doc.split('\n')[0])
    parser.add_argument('--small', action='store_true',
                        help='reduced mode: CPU, seconds to a minute')
    return parser


def apply_preset(args: argparse.Namespace, small: dict,
                 full: dict) -> argparse.Namespace:
    """Set every option still ``None`` from the ``small`` or ``full``
    preset; options given on the command line win."""
    for key, value in (small if args.small else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def get_device(name: Optional[str] = None, threads: Optional[int] = None):
    """``name`` or CUDA when available, else CPU; cuDNN autotuning on as in
    the training configs; ``threads`` caps torch's CPU threads."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(name or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    return device


def device_name(device) -> str:
    import torch
    return torch.cuda.get_device_name(device) if device.type == 'cuda' \
        else 'cpu'


def synchronize(device=None) -> None:
    """Wait for the device (timings must include the queued work)."""
    if device is not None and device.type == 'cuda':
        import torch
        torch.cuda.synchronize(device)


def interleave(
    sides: Dict[str, Callable[[], object]],
    rounds: int,
    device=None,
    prepare: Optional[Callable[[str], object]] = None,
) -> Tuple[Dict[str, List[float]], Dict[str, int]]:
    """Time each side once per round, in alternating order.

    Args:
        sides: name -> the work to time.
        rounds: how many times each side is timed.
        device: synchronised around each timing (CUDA), and its peak
            memory per side is recorded.
        prepare: called with the side's name before each timing, untimed
            (e.g. refill a loader's prefetch, build fresh inputs).

    Returns:
        Seconds of each timing per side, and each side's peak device memory
        in bytes (0 on CPU).
    """
    import torch
    cuda = device is not None and device.type == 'cuda'
    times = {name: [] for name in sides}
    peaks = {name: 0 for name in sides}
    for r in range(rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            if prepare is not None:
                prepare(name)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            t0 = time.perf_counter()
            sides[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
            if cuda:
                peaks[name] = max(peaks[name],
                                  torch.cuda.max_memory_allocated(device))
    return times, peaks


def make_pngs(folder: str, num: int, size: int = 224,
              seed: int = 0) -> List[str]:
    """``num`` photo-like PNGs (smooth colour fields plus texture noise)
    named ``{k}.PNG`` in ``folder``, as the benchmarks' synthetic data."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(num):
        base = rng.integers(0, 256, (size // 16, size // 16, 3), np.uint8)
        img = np.asarray(
            Image.fromarray(base).resize((size, size), Image.BICUBIC),
            dtype=np.int16)
        img = img + rng.normal(0, 6, img.shape).astype(np.int16)
        p = osp.join(folder, f'{k}.PNG')
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def emit(bench: str, **fields) -> None:
    """One JSON line: ``{"bench": bench, **fields}``."""
    print(json.dumps(dict(bench=bench, **fields)), flush=True)


def emit_ratio(bench: str, **ratios) -> None:
    """The ratio line, printed last by every benchmark."""
    emit(bench, metric='ratio', **ratios)
