#!/usr/bin/env python
"""Collect the final detection metrics of several work dirs into a table.

    python tools/analysis_tools/collect_results.py WORK_DIR [WORK_DIR ...] \
        [--out table.md] [--percent]

For each work dir the metrics come from, in this order:

1. ``WORK_DIR/metrics.json`` (one JSON object of metric -> value), if present;
2. the newest ``WORK_DIR/<timestamp>/<timestamp>.json`` that ``tools/test.py``
   writes (one JSON object);
3. the last line with metrics in ``WORK_DIR/<timestamp>/vis_data/scalars.json``
   (mmengine's json log, one object per line; the newest run that has one).

A WORK_DIR may also be a ``<timestamp>`` run folder or a json file itself.
Rows are work dirs, columns AP, AP50, AP75, APs, APm, APl, AR100 (``-`` where
a metric was not logged, ``n/a`` for COCO's -1 = no objects of that size), on
mmdet's 0-1 scale (``--percent``: x100).
"""
import argparse
import glob
import json
import os.path as osp
import sys

# Column -> accepted names of the metric, compared with the last part of a
# key ('coco/bbox_mAP_50' -> 'bbox_mAP_50'); the first name that matches wins.
COLUMNS = {
    'AP': ('bbox_mAP', 'mAP', 'AP', 'bbox_AP'),
    'AP50': ('bbox_mAP_50', 'mAP_50', 'AP50', 'bbox_AP50'),
    'AP75': ('bbox_mAP_75', 'mAP_75', 'AP75', 'bbox_AP75'),
    'APs': ('bbox_mAP_s', 'mAP_s', 'APs', 'bbox_APs'),
    'APm': ('bbox_mAP_m', 'mAP_m', 'APm', 'bbox_APm'),
    'APl': ('bbox_mAP_l', 'mAP_l', 'APl', 'bbox_APl'),
    'AR100': ('bbox_AR@100', 'AR@100', 'bbox_AR_100', 'AR100', 'AR_100',
              'bbox_AR100'),
}
METRIC_NAMES = {n for names in COLUMNS.values() for n in names}
# keys that every train/val/test log line has but that are not metrics
NOT_METRICS = {'step', 'iter', 'epoch', 'time', 'data_time', 'memory', 'lr'}


# --------------------------------------------------------------------------
# reading mmengine logs (also used by plot_logs.py)
# --------------------------------------------------------------------------
def load_scalars(path):
    """Read an mmengine ``scalars.json`` (one JSON object per line).

    A truncated last line (a job still writing) is skipped with a warning;
    a bad line elsewhere is an error naming the file and line.
    """
    records = []
    with open(path) as f:
        lines = f.read().splitlines()
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            if no == len(lines):
                print(f'warning: {path}:{no}: incomplete last line skipped',
                      file=sys.stderr)
                continue
            raise ValueError(f'{path}:{no}: not a JSON object per line '
                             f'(mmengine scalars.json expected): {e}') from e
        if not isinstance(rec, dict):
            raise ValueError(f'{path}:{no}: expected a JSON object, got '
                             f'{type(rec).__name__}')
        records.append(rec)
    return records


def run_dirs(work_dir):
    """Timestamped run folders of a work dir, oldest first."""
    if osp.isdir(osp.join(work_dir, 'vis_data')):
        return [work_dir]  # a run folder itself
    dirs = [d for d in glob.glob(osp.join(work_dir, '*')) if osp.isdir(d)
            and (osp.isdir(osp.join(d, 'vis_data'))
                 or osp.isfile(osp.join(d, osp.basename(d) + '.json')))]
    return sorted(dirs, key=lambda d: osp.basename(d))


def scalars_files(work_dir):
    """``scalars.json`` files of a work dir (or the file itself), oldest
    first."""
    if osp.isfile(work_dir):
        return [work_dir]
    files = [osp.join(d, 'vis_data', 'scalars.json') for d in run_dirs(work_dir)]
    return [f for f in files if osp.isfile(f)]


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------
def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _metric_name(key):
    """'coco/bbox_mAP_50' -> 'bbox_mAP_50'; None for per-class keys
    ('coco/bbox_AP/cup or mug') and bookkeeping keys."""
    if key in NOT_METRICS or key.count('/') > 1:
        return None
    return key.split('/')[-1]


def has_metrics(rec):
    return any(_is_number(v) and _metric_name(k) in METRIC_NAMES
               for k, v in rec.items())


def pick_columns(rec):
    """Map a metrics dict onto COLUMNS (missing -> None)."""
    by_last = {}
    for k, v in rec.items():
        last = _metric_name(k)
        if _is_number(v) and last is not None:
            # keep the first key for a name, preferring 'coco/...' ones
            if last not in by_last or k.startswith('coco/'):
                by_last[last] = v
    out = {}
    for col, names in COLUMNS.items():
        out[col] = next((by_last[n] for n in names if n in by_last), None)
    return out


def final_metrics(work_dir):
    """(metrics dict, where it came from) of one work dir.

    Raises FileNotFoundError naming what was looked at when nothing is found.
    """
    looked = []
    if osp.isfile(work_dir):
        with open(work_dir) as f:
            text = f.read()
        try:  # a single JSON object (metrics.json, test json)
            rec = json.loads(text)
            if isinstance(rec, dict) and has_metrics(rec):
                return rec, work_dir
        except ValueError:
            pass
        recs = [r for r in load_scalars(work_dir) if has_metrics(r)]
        if recs:
            return recs[-1], _where(work_dir, recs[-1])
        raise FileNotFoundError(f'{work_dir}: no detection metrics '
                                f'(keys like coco/bbox_mAP) in it')
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir}: no such work dir or file')

    path = osp.join(work_dir, 'metrics.json')
    looked.append(path)
    if osp.isfile(path):
        with open(path) as f:
            try:
                rec = json.load(f)
            except ValueError as e:
                raise ValueError(f'{path}: not valid JSON: {e}') from e
        if not isinstance(rec, dict):
            raise ValueError(f'{path}: expected a JSON object of '
                             f'metric -> value')
        return rec, path

    runs = run_dirs(work_dir)
    for d in reversed(runs):  # test results (tools/test.py) of newest run
        path = osp.join(d, osp.basename(d) + '.json')
        looked.append(path)
        if osp.isfile(path):
            try:
                with open(path) as f:
                    rec = json.load(f)
            except ValueError:
                continue
            if isinstance(rec, dict) and has_metrics(rec):
                return rec, path
    for path in reversed(scalars_files(work_dir)):
        looked.append(path)
        recs = [r for r in load_scalars(path) if has_metrics(r)]
        if recs:
            return recs[-1], _where(path, recs[-1])
    if not runs:
        looked.append(osp.join(work_dir, '<timestamp>', 'vis_data',
                               'scalars.json'))
    raise FileNotFoundError(
        f'{work_dir}: no detection metrics found (looked at: '
        f'{", ".join(looked)}). Run validation/tools/test.py with this '
        f'work dir, or put a metrics.json there.')


def _where(path, rec):
    step = rec.get('step', rec.get('epoch'))
    return f'{path} (step {step})' if step is not None else path


def fmt(v, percent):
    if v is None:
        return '-'
    if v < 0:  # COCO's -1: no ground truth of that size
        return 'n/a'
    return f'{v * 100:.1f}' if percent else f'{v:.3f}'


def markdown_table(rows, percent=False, show_source=True):
    """rows: list of (name, metrics or None, source or error)."""
    head = ['work dir'] + list(COLUMNS) + (['source'] if show_source else [])
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join(['---'] + ['---:'] * len(COLUMNS)
                            + (['---'] if show_source else [])) + '|']
    for name, metrics, src in rows:
        cols = pick_columns(metrics) if metrics else {c: None for c in COLUMNS}
        cells = [name] + [fmt(cols[c], percent) for c in COLUMNS]
        if show_source:
            cells.append(src)
        lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells)
                     + ' |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Collect final detection metrics of work dirs into one '
        'Markdown table.')
    p.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    p.add_argument('--out', help='also write the table to this file')
    p.add_argument('--percent', action='store_true',
                   help='print AP/AR x100 (default: mmdet 0-1 scale)')
    p.add_argument('--no-source', action='store_true',
                   help='leave out the column naming where metrics came from')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows, found = [], 0
    for wd in args.work_dirs:
        name = osp.basename(osp.normpath(wd))
        try:
            metrics, src = final_metrics(wd)
            found += 1
            rows.append((name, metrics, src))
        except (OSError, ValueError) as e:
            print(f'warning: {e}', file=sys.stderr)
            rows.append((name, None, 'no metrics'))
    table = markdown_table(rows, args.percent, not args.no_source)
    print(table, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
        print(f'wrote {args.out}', file=sys.stderr)
    if not found:
        print('error: none of the work dirs had metrics', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
