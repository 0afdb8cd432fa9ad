"""Every benchmark of tools/analysis_tools runs in a reduced --small mode and
keeps its output contract (JSON lines, the ratio line last, op counts where
promised), so the one-shot GPU run (gpu_bench.sh) does not fail on a broken
script. They run with a transformers-5 stand-in on the path (conftest's
``transformers5_site``), as a GPU machine with transformers >= 5 has (a
script importing mmpretrain before projects.compat fails there). Timings are not
checked here."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from process_helpers import ROOT

B = osp.join(ROOT, 'tools', 'analysis_tools')

CASES = {
    'vicreg_step': ['bench_vicreg_step.py', '--small', '--rounds', '1',
                    '--steps', '1', '--threads', '1'],
    'faster_rcnn_step': ['bench_faster_rcnn_step.py', '--small', '--batch',
                         '1', '--height', '128', '--width', '160',
                         '--rounds', '1', '--threads', '1'],
    'views': ['bench_views.py', '--small', '--images', '6', '--rounds', '1',
              '--skip-cpu-gpuviews'],
    'pretrain_e2e': ['bench_pretrain_e2e.py', '--small', '--rounds', '1'],
    'coco_eval': ['bench_coco_eval.py', '--small', '--images', '40',
                  '--rounds', '1'],
}


def _run(args, site):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               PYTHONPATH=os.pathsep.join([site, ROOT]))
    proc = subprocess.run([sys.executable, osp.join(B, args[0])] + args[1:],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()
             if line.startswith('{')]
    assert lines, proc.stdout[-2000:]
    return lines


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CASES))
def test_benchmark_small_mode_output_contract(name, transformers5_site):
    lines = _run(CASES[name], transformers5_site)
    assert lines[-1].get('metric') == 'ratio'
    assert all(line.get('metric') != 'ratio' for line in lines[:-1])
    ratio = lines[-1]
    if name == 'views':
        assert ratio['official_over_ours'] > 0
        variants = {line['variant'] for line in lines[:-1]}
        assert {'official', 'ours', 'mmpretrain'} <= variants
    if name in ('vicreg_step', 'faster_rcnn_step'):
        ops = [line for line in lines if line.get('metric') == 'ops']
        assert len(ops) == (2 if name == 'vicreg_step' else 3)
        for line in ops:
            assert line['aten_ops'] > 100 and line['sync_ops'] >= 0
    if name == 'faster_rcnn_step':
        fp32 = ratio['fp32']
        assert set(fp32) == {'ours_over_torchvision',
                             'stock_over_torchvision', 'ours_over_stock'}
        ops = {line['side']: line for line in lines
               if line.get('metric') == 'ops'}
        # the sync-free assigner and the anchor cache are in effect
        assert ops['ours_mmdet']['sync_ops'] < ops['stock_mmdet']['sync_ops']
        assert ops['ours_mmdet']['aten_ops'] < ops['stock_mmdet']['aten_ops']
