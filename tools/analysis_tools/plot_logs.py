#!/usr/bin/env python
"""Plot mmengine json logs of VICReg pretraining and detection fine-tuning.

    python tools/analysis_tools/plot_logs.py WORK_DIR [WORK_DIR ...] --out DIR

Reads ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (all runs of the work
dir in time order, so resumed training continues the curves; ``--latest``:
only the newest run). A WORK_DIR may also be a run folder or a scalars.json.
Which kind of run it was is detected from the keys (``--kind`` overrides):

* VICReg (``loss_inv``/``loss_var``/``loss_cov`` or collapse measures):
  ``<name>_losses.png`` (loss components and lr over iterations) and
  ``<name>_collapse.png`` (numeric keys matching ``--collapse-pattern``,
  by default the keys CollapseMonitorHook logs: ``emb_std``, ``rankme``,
  ``rankme_ratio``; over iterations) and, when the run had an
  ``ObjectCropKNNHook``, ``<name>_knn.png`` (``knn/top1``, ``knn/top5``,
  ``knn/mean_class`` over iterations);
* detector (``loss_rpn_*``/``loss_bbox`` or ``coco/...`` metrics):
  ``<name>_losses.png`` (losses over iterations) and ``<name>_val.png``
  (validation AP over epochs).

``<name>`` is the work dir's folder name. Prints the PNG paths it wrote.

What it adds to mmdet's / mmpretrain's ``tools/analysis_tools/
analyze_logs.py plot_curve`` (chosen ``--keys`` of given scalars.json files
in one figure; use that for any other log or key): work dirs instead of
files, each run of a work dir read in time order so that a resumed training
continues its curves (later points replace earlier ones at the same
iteration, a truncated last line of a running job is skipped), several work
dirs in one call, and the panels of this project's two stages picked from
the keys: VICReg's loss terms, collapse measures and object-crop kNN probe
over iterations, the detector's losses and validation AP over epochs.
"""
import argparse
import os
import os.path as osp
import re
import sys

from collect_results import load_scalars, scalars_files

VICREG_KEYS = ('loss_inv', 'loss_var', 'loss_cov')
# The train keys CollapseMonitorHook logs (projects/vicreg/engine/hooks).
COLLAPSE_PATTERN = r'^(emb_std|rankme|rankme_ratio)$'
DET_LOSS_HINTS = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox')
# keys that are bookkeeping, not curves
SKIP = {'step', 'iter', 'epoch', 'time', 'data_time', 'memory'}


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_work_dir(work_dir, latest=False):
    """(train records, val records) of a work dir; train ones have 'iter'.

    Points of a later run at the same iteration/epoch replace earlier ones.
    """
    files = scalars_files(work_dir)
    if not files:
        raise FileNotFoundError(
            f'{work_dir}: no <timestamp>/vis_data/scalars.json found; is it '
            f'a work dir of tools/train.py (with LocalVisBackend)?')
    if latest:
        files = files[-1:]
    train, val = {}, {}
    for f in files:
        for rec in load_scalars(f):
            if 'iter' in rec:
                train[rec['iter']] = rec
            elif 'step' in rec:
                val[rec['step']] = rec
    return ([train[k] for k in sorted(train)], [val[k] for k in sorted(val)])


def detect_kind(train, val, collapse_re):
    keys = set()
    for r in train:
        keys.update(r)
    vkeys = set()
    for r in val:
        vkeys.update(r)
    if any(k in keys for k in VICREG_KEYS) or any(
            collapse_re.search(k) for k in keys):
        return 'vicreg'
    if any(k in keys for k in DET_LOSS_HINTS) or any(
            'bbox_mAP' in k or k.startswith('coco/') for k in vkeys):
        return 'det'
    return None


def series(records, key, x_key):
    xs, ys = [], []
    for r in records:
        if _num(r.get(key)) and _num(r.get(x_key, r.get('step'))):
            xs.append(r.get(x_key, r.get('step')))
            ys.append(r[key])
    return xs, ys


def smooth(ys, n):
    if n <= 1 or len(ys) < 2:
        return ys
    out, acc = [], []
    for y in ys:
        acc.append(y)
        if len(acc) > n:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def numeric_keys(records, pred):
    keys = []
    for r in records:
        for k, v in r.items():
            if k not in keys and k not in SKIP and _num(v) and pred(k):
                keys.append(k)
    return keys


def grid_plot(records, keys, x_key, xlabel, title, path, smooth_n=1,
              log_keys=()):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    n = len(keys)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs, ys = series(records, key, x_key)
        ax.plot(xs, smooth(ys, smooth_n), marker='o' if len(xs) < 20 else None,
                linewidth=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if key in log_keys and all(y > 0 for y in ys):
            ax.set_yscale('log')
        if x_key == 'step':  # epochs
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[n:]:
        ax.axis('off')
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_work_dir(work_dir, out_dir, name, kind='auto',
                  collapse_pattern=COLLAPSE_PATTERN, latest=False, smooth_n=1):
    """Write the PNGs of one work dir; returns their paths."""
    collapse_re = re.compile(collapse_pattern)
    train, val = read_work_dir(work_dir, latest)
    if not train and not val:
        raise ValueError(f'{work_dir}: scalars.json has no records yet')
    if kind == 'auto':
        kind = detect_kind(train, val, collapse_re)
    if kind is None:
        # other logs: mmdet / mmpretrain's analyze_logs.py plots any key
        raise ValueError(
            f'{work_dir}: neither a VICReg nor a detector log (pass --kind, '
            f'or plot its keys with mmdet/mmpretrain\'s '
            f'tools/analysis_tools/analyze_logs.py plot_curve)')
    written = []

    def is_loss(k):
        return k.split('/')[-1].startswith('loss')

    loss_keys = numeric_keys(train, is_loss)
    if kind == 'vicreg':
        # total first, then the three terms, then any other loss, then lr
        order = ['loss'] + list(VICREG_KEYS)
        keys = [k for k in order if k in loss_keys]
        keys += [k for k in loss_keys if k not in keys]
        keys += numeric_keys(train, lambda k: k.endswith('lr'))
        if keys:
            written.append(grid_plot(
                train, keys, 'iter', 'iteration', f'{name}: VICReg losses',
                osp.join(out_dir, f'{name}_losses.png'), smooth_n))
        ckeys = numeric_keys(train, lambda k: bool(collapse_re.search(k))
                             and not is_loss(k))
        if ckeys:
            written.append(grid_plot(
                train, ckeys, 'iter', 'iteration',
                f'{name}: collapse measures',
                osp.join(out_dir, f'{name}_collapse.png'), smooth_n))
        else:
            print(f'note: {work_dir}: no keys matching '
                  f'/{collapse_pattern}/ in the train log; no collapse plot',
                  file=sys.stderr)
        # ObjectCropKNNHook: step = iteration, as the loss curves
        kkeys = numeric_keys(val, lambda k: k.startswith('knn/'))
        if kkeys:
            written.append(grid_plot(
                val, kkeys, 'step', 'iteration',
                f'{name}: object-crop kNN probe (%)',
                osp.join(out_dir, f'{name}_knn.png')))
    else:
        keys = loss_keys + numeric_keys(
            train, lambda k: k.split('/')[-1] in ('acc', 'accuracy'))
        if keys:
            written.append(grid_plot(
                train, keys, 'iter', 'iteration', f'{name}: training losses',
                osp.join(out_dir, f'{name}_losses.png'), smooth_n))
        vkeys = numeric_keys(
            val, lambda k: 'mAP' in k or '/AP' in k or 'AR@' in k)
        if vkeys:
            written.append(grid_plot(
                val, vkeys, 'step', 'epoch', f'{name}: validation',
                osp.join(out_dir, f'{name}_val.png')))
        else:
            print(f'note: {work_dir}: no validation metrics logged yet; '
                  f'no AP plot', file=sys.stderr)
    if not written:
        raise ValueError(f'{work_dir}: nothing to plot (no numeric loss or '
                         f'metric keys in scalars.json)')
    return written


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Plot losses, collapse measures and validation AP from '
        "mmengine's scalars.json logs.")
    p.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    p.add_argument('--out', required=True, help='folder for the PNGs')
    p.add_argument('--kind', default='auto', choices=['auto', 'vicreg', 'det'],
                   help='kind of run (default: detected from the keys)')
    p.add_argument('--collapse-pattern', default=COLLAPSE_PATTERN,
                   help='regex of train keys that are collapse measures')
    p.add_argument('--latest', action='store_true',
                   help='only the newest run of each work dir')
    p.add_argument('--smooth', type=int, default=1,
                   help='moving average over this many train points')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        re.compile(args.collapse_pattern)
    except re.error as e:
        print(f'error: --collapse-pattern: {e}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    names, failed = set(), 0
    for wd in args.work_dirs:
        base = osp.basename(osp.normpath(wd))
        if base == 'scalars.json':  # .../<ts>/vis_data/scalars.json
            base = osp.basename(osp.dirname(osp.dirname(osp.abspath(wd))))
        name, i = base, 1
        while name in names:
            i += 1
            name = f'{base}_{i}'
        names.add(name)
        try:
            for path in plot_work_dir(wd, args.out, name, args.kind,
                                      args.collapse_pattern, args.latest,
                                      args.smooth):
                print(path)
        except (OSError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
