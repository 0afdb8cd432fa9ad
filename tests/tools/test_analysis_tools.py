"""tools/analysis_tools: plot_logs.py and collect_results.py on synthetic
mmengine logs."""
import importlib.util
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
from PIL import Image
from process_helpers import ROOT

TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')


def _load(name):
    """A tool module by path, registered under its name so that sibling
    imports (plot_logs imports collect_results) resolve as when run."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


collect_results = _load('collect_results')
plot_logs = _load('plot_logs')


def _write_run(work_dir, ts, records, test=None):
    vis = work_dir / ts / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(
        ''.join(json.dumps(r) + '\n' for r in records))
    if test is not None:
        (work_dir / ts / f'{ts}.json').write_text(json.dumps(test))
    return vis / 'scalars.json'


def _vicreg_records(n=20, start=1):
    recs = []
    for i in range(start, start + n):
        recs.append({
            'lr': 0.15 * i / n, 'data_time': 0.01, 'time': 0.2,
            'loss': 40 - i, 'loss_inv': 10 - i / 4, 'loss_var': 5 - i / 10,
            'loss_cov': 1 + i / 50, 'emb_std': 0.1 + i / 100,
            'rankme': 100 + i, 'rankme_ratio': 0.5 + i / 100,
            'std_coeff': 25.0, 'epoch': 1 + i // 10, 'iter': i * 10,
            'memory': 0, 'step': i * 10})
    return recs


def _det_records(epochs=3, iters_per_epoch=4):
    recs, it = [], 0
    for ep in range(1, epochs + 1):
        for _ in range(iters_per_epoch):
            it += 1
            recs.append({
                'lr': 0.02, 'data_time': 0.01, 'time': 0.3,
                'loss': 2.0 / it, 'loss_rpn_cls': 0.5 / it,
                'loss_rpn_bbox': 0.2 / it, 'loss_cls': 1.0 / it,
                'acc': 50 + it, 'loss_bbox': 0.3 / it, 'epoch': ep,
                'iter': it, 'memory': 0, 'step': it})
        recs.append({
            'coco/bbox_mAP': 0.1 * ep, 'coco/bbox_mAP_50': 0.2 * ep,
            'coco/bbox_mAP_75': 0.05 * ep, 'coco/bbox_mAP_s': -1.0,
            'coco/bbox_mAP_m': 0.07 * ep, 'coco/bbox_mAP_l': 0.12 * ep,
            'coco/bbox_AR@1': 0.01 * ep, 'coco/bbox_AR@100': 0.3 * ep,
            'coco/bbox_AR_s@100': -1.0,
            # classwise=True: per-class AP, NaN for absent classes
            'coco/bbox_AP/cup or mug': 0.5, 'coco/bbox_AP/AP': float('nan'),
            'data_time': 0.01, 'time': 0.1, 'step': ep})
    return recs


def _is_png(path):
    with Image.open(path) as im:
        return im.format == 'PNG' and im.size[0] > 100 and im.size[1] > 100


# --------------------------------------------------------------------------
# plot_logs
# --------------------------------------------------------------------------
def test_plot_vicreg(tmp_path):
    wd = tmp_path / 'vicreg_r18'
    _write_run(wd, '20240101_000000', _vicreg_records())
    out = tmp_path / 'plots'
    assert plot_logs.main([str(wd), '--out', str(out)]) == 0
    assert _is_png(out / 'vicreg_r18_losses.png')
    assert _is_png(out / 'vicreg_r18_collapse.png')
    assert not (out / 'vicreg_r18_val.png').exists()
    train, val = plot_logs.read_work_dir(str(wd))
    collapse_re = re.compile(plot_logs.COLLAPSE_PATTERN)
    assert plot_logs.detect_kind(train, val, collapse_re) == 'vicreg'
    # exactly the keys CollapseMonitorHook logs; not a look-alike key
    # ('std_coeff') that a loose 'std|rank' pattern would also plot
    keys = plot_logs.numeric_keys(train,
                                  lambda k: bool(collapse_re.search(k)))
    assert keys == ['emb_std', 'rankme', 'rankme_ratio']
    assert re.search('std|rank', 'std_coeff')  # the loose pattern's miss


def test_plot_vicreg_knn_probe(tmp_path):
    # ObjectCropKNNHook records: step = iteration, no 'iter' key
    knn = [{'knn/top1': 20.0 + e, 'knn/top5': 80.0 + e,
            'knn/mean_class': 19.0 + e, 'epoch': e, 'step': e * 100}
           for e in range(3)]
    wd = tmp_path / 'vicreg_knn'
    _write_run(wd, '20240101_000000', _vicreg_records() + knn)
    out = tmp_path / 'plots'
    assert plot_logs.main([str(wd), '--out', str(out)]) == 0
    assert _is_png(out / 'vicreg_knn_knn.png')
    assert _is_png(out / 'vicreg_knn_losses.png')
    # a run without the probe gets no kNN plot (the test can fail)
    wd2 = tmp_path / 'vicreg_plain'
    _write_run(wd2, '20240101_000000', _vicreg_records())
    assert plot_logs.main([str(wd2), '--out', str(tmp_path / 'p3')]) == 0
    assert not (tmp_path / 'p3' / 'vicreg_plain_knn.png').exists()


def test_plot_detector(tmp_path):
    wd = tmp_path / 'faster_rcnn'
    _write_run(wd, '20240101_000000', _det_records())
    out = tmp_path / 'plots'
    assert plot_logs.main([str(wd), '--out', str(out)]) == 0
    assert _is_png(out / 'faster_rcnn_losses.png')
    assert _is_png(out / 'faster_rcnn_val.png')
    assert not (out / 'faster_rcnn_collapse.png').exists()


def test_plot_resumed_runs_concatenate(tmp_path):
    wd = tmp_path / 'wd'
    _write_run(wd, '20240101_000000', _vicreg_records(10, 1))
    # resumed run: overlaps at iter 100, goes on to 200; last line truncated
    f = _write_run(wd, '20240102_000000', _vicreg_records(11, 10))
    with open(f, 'a') as fh:
        fh.write('{"loss": 1.0, "it')
    train, _ = plot_logs.read_work_dir(str(wd))
    iters = [r['iter'] for r in train]
    assert iters == sorted(set(iters)) and iters[0] == 10 and iters[-1] == 200
    latest, _ = plot_logs.read_work_dir(str(wd), latest=True)
    assert latest[0]['iter'] == 100


def test_plot_several_and_errors(tmp_path, capsys):
    a = tmp_path / 'a' / 'same'
    b = tmp_path / 'b' / 'same'
    _write_run(a, '20240101_000000', _vicreg_records())
    _write_run(b, '20240101_000000', _det_records())
    out = tmp_path / 'plots'
    assert plot_logs.main([str(a), str(b), '--out', str(out)]) == 0
    assert (out / 'same_losses.png').exists()
    assert (out / 'same_2_losses.png').exists()
    assert (out / 'same_2_val.png').exists()
    # a folder without logs: clear error naming it, non-zero exit
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert plot_logs.main([str(empty), '--out', str(out)]) == 1
    assert 'scalars.json' in capsys.readouterr().err


def test_other_logs_point_to_analyze_logs(tmp_path, capsys):
    """Neither stage's keys: mmdet/mmpretrain's analyze_logs.py plots any
    key; plot_logs says so instead of duplicating it."""
    wd = tmp_path / 'classifier'
    _write_run(wd, '20240101_000000', [
        {'lr': 0.1, 'loss': 1.0, 'epoch': 1, 'iter': 1, 'step': 1},
        {'accuracy/top1': 50.0, 'step': 1}])
    assert plot_logs.main([str(wd), '--out', str(tmp_path / 'p')]) == 1
    assert 'analyze_logs.py plot_curve' in capsys.readouterr().err


def test_bad_json_line_names_file(tmp_path):
    f = tmp_path / 'scalars.json'
    f.write_text('{"loss": 1, "iter": 1, "step": 1}\nnot json\n'
                 '{"loss": 1, "iter": 2, "step": 2}\n')
    with pytest.raises(ValueError, match=r'scalars\.json:2'):
        collect_results.load_scalars(str(f))


# --------------------------------------------------------------------------
# collect_results
# --------------------------------------------------------------------------
def test_collect_from_scalars_and_metrics_json(tmp_path):
    det = tmp_path / 'det_vicreg'
    _write_run(det, '20240101_000000', _det_records(epochs=3))
    other = tmp_path / 'det_imagenet'
    other.mkdir()
    (other / 'metrics.json').write_text(json.dumps({
        'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.7,
        'coco/bbox_AR@100': 0.61}))
    out = tmp_path / 'table.md'
    rc = collect_results.main([str(det), str(other), '--out', str(out)])
    assert rc == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith('| work dir | AP | AP50 | AP75 | APs | APm | '
                               'APl | AR100 |')
    row = dict(zip([c.strip() for c in lines[0].split('|')],
                   [c.strip() for c in lines[2].split('|')]))
    assert row['work dir'] == 'det_vicreg'
    assert row['AP'] == '0.300'  # last val line: epoch 3
    assert row['AP50'] == '0.600'
    assert row['APs'] == 'n/a'  # mmdet's -1: no small objects
    assert row['AR100'] == '0.900'  # coco/bbox_AR@100, not AR_s@100
    assert 'step 3' in row['source']
    row2 = [c.strip() for c in lines[3].split('|')]
    assert row2[1:3] == ['det_imagenet', '0.500']
    assert row2[8] == '0.610' and row2[4] == '-'


def test_collect_prefers_test_json_and_percent(tmp_path, capsys):
    wd = tmp_path / 'wd'
    _write_run(wd, '20240101_000000', _det_records(epochs=2))
    # tools/test.py run: <ts>/<ts>.json, one object, no vis_data lines needed
    ts = '20240103_000000'
    (wd / ts).mkdir()
    (wd / ts / f'{ts}.json').write_text(json.dumps(
        {'coco/bbox_mAP': 0.42, 'coco/bbox_mAP_50': 0.6}))
    assert collect_results.main([str(wd), '--percent', '--no-source']) == 0
    out = capsys.readouterr().out
    assert '| wd | 42.0 | 60.0 | - |' in out
    assert 'source' not in out


def test_collect_missing(tmp_path, capsys):
    good = tmp_path / 'good'
    _write_run(good, '20240101_000000', _det_records(epochs=1))
    bad = tmp_path / 'bad'
    _write_run(bad, '20240101_000000', _vicreg_records())  # no metrics
    assert collect_results.main([str(good), str(bad)]) == 0
    cap = capsys.readouterr()
    assert 'bad' in cap.err and 'no detection metrics' in cap.err
    assert '| bad | - | - |' in cap.out
    assert collect_results.main([str(bad)]) == 1
    assert collect_results.main([str(tmp_path / 'nope')]) == 1


def test_clis_run(tmp_path):
    wd = tmp_path / 'det'
    _write_run(wd, '20240101_000000', _det_records())
    for script, extra in (('plot_logs.py', ['--out', str(tmp_path / 'p')]),
                          ('collect_results.py', [])):
        res = subprocess.run(
            [sys.executable, osp.join(TOOLS, script), str(wd)] + extra,
            capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    assert (tmp_path / 'p' / 'det_val.png').exists()
