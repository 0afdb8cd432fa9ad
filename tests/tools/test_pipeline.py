"""End-to-end: torchrun (2 gloo processes) for both stages, and the demo.

Slow: each test runs the real tools as a user would.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys

import pytest
from process_helpers import ROOT, free_port, run_ok

VICREG_CFG = 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py'
DET_CFG = ('configs/faster_rcnn/'
           'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_data')
    run_ok([sys.executable, 'tools/generate_demo_data.py', '--out', str(root),
           '--num-unlabeled', '32', '--num-train', '8', '--num-val', '4'])
    for split in ('training', 'validation'):
        run_ok([sys.executable, 'tools/dataset_converters/yaml_to_coco.py',
               str(root / 'labeled'), split,
               str(root / 'labeled' / 'annotations' / f'{split}.json')])
    return root


def _det_options(labeled: str) -> list:
    return [
        *[f'{loader}.dataset.data_root={labeled}/' for loader in
          ('train_dataloader', 'val_dataloader', 'test_dataloader')],
        *[f'{ev}.ann_file={labeled}/annotations/validation.json'
          for ev in ('val_evaluator', 'test_evaluator')],
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
    ]


def test_torchrun_two_processes_both_stages(data, tmp_path):
    """tools/dist_train.sh / dist_test.sh with 2 CPU processes (gloo):
    pretraining gathers the VICReg embeddings of both processes, and its
    checkpoint initialises the detector, which trains and is evaluated."""
    vicreg_dir = tmp_path / 'vicreg'
    log = run_ok([
        'bash', 'tools/dist_train.sh', VICREG_CFG, '2', '--work-dir',
        str(vicreg_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={data}/unlabeled',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ], PORT=str(free_port()))
    # 2 processes x local batch 4: the loss sees all 8 embeddings
    assert re.search(r'over 8 embeddings gathered from 2 process\(es\) '
                     r'\(local batch 4\)', log), log[-3000:]
    # 32 images / (4 x 2 ranks) = 4 iterations, all ranks stepping together
    assert re.search(r'Epoch\(train\)\s*\[1\]\[4/4\]', log)
    ckpt = (vicreg_dir / 'last_checkpoint').read_text().strip()
    assert osp.isfile(ckpt)

    labeled = str(data / 'labeled')
    det_dir = tmp_path / 'det'
    opts = _det_options(labeled)
    log = run_ok([
        'bash', 'tools/dist_train.sh', DET_CFG, '2', '--work-dir',
        str(det_dir), '--cfg-options', *opts,
        f'model.backbone.init_cfg.checkpoint={ckpt}'
    ], PORT=str(free_port()))
    assert 'backbone: loaded' in log
    det_ckpt = (det_dir / 'last_checkpoint').read_text().strip()
    eval_dir = tmp_path / 'eval'
    run_ok([
        'bash', 'tools/dist_test.sh', DET_CFG, det_ckpt, '2', '--work-dir',
        str(eval_dir), '--cfg-options', *opts
    ], PORT=str(free_port()))
    metrics = json.loads((eval_dir / 'metrics.json').read_text())
    assert 'coco/bbox_mAP' in metrics and 'coco/bbox_AR@100' in metrics
    assert (eval_dir / 'validation_results.txt').is_file()


def test_demo_quick_runs_every_stage(tmp_path):
    """`tools/run_demo.py --quick` (what `make demo-quick` runs): data,
    conversion, pretraining, the check, both fine-tunes, evaluation with
    the paired tests, plots, table; with --semi, Soft Teacher from the
    VICReg fine-tune and its unlabeled-weight-0 control."""
    out = run_ok([sys.executable, 'tools/run_demo.py', '--quick', '--work-dir',
                 str(tmp_path / 'work'), '--data-dir', str(tmp_path / 'data'),
                 '--bootstrap', '20', '--semi'], timeout=900)
    table = (tmp_path / 'work' / 'results.md').read_text()
    work = tmp_path / 'work' / 'seed0'
    # kNN top-1, balanced, AP, AP50, AR100 of each column
    for col in ('vicreg', 'random'):
        assert re.search(rf'^\| 0 \| [A-Z a-z]+ \| {col} \|( [\d.]+ \|){{5}}$',
                         table, re.M), table
    assert re.search(r'\| difference \| [+-][\d.]+ \(McNemar p=', table)
    assert table.strip() in out
    assert 'pretraining check, seed 0:' in out
    for name in ('det_vicreg', 'det_random'):
        assert (work / name / 'validation_results.txt').is_file()
        assert (work / name / 'predictions.bbox.json').is_file()
    assert list((work / 'plots').glob('*_knn.png'))  # the probe was logged
    results = json.loads(
        (tmp_path / 'work' / 'results.json').read_text())['0']
    assert set(results['bootstrap']) == {'bbox_mAP', 'bbox_AR@100'}
    assert not results['pretrain_cached']
    for col in ('vicreg_semi', 'vicreg_semi0'):
        assert re.search(rf'^\| 0 \| {col} \|( [\d.]+ \|){{3}}$', table,
                         re.M), table
        log = (work / 'logs' / f'finetune_{col}.log').read_text()
        assert re.search(r'Load checkpoint from .*det_vicreg', log), log
    assert re.search(r'^\| 0 \| difference \| [+-][\d.]+ \(bootstrap p=',
                     table, re.M), table
    assert set(results['semi']['det']) == {'vicreg_semi', 'vicreg_semi0'}
    # both detectors really started from a file: VICReg's, random init's
    for name in ('vicreg', 'random'):
        log = (work / 'logs' / f'finetune_{name}.log').read_text()
        assert 'backbone: loaded' in log


def _run_demo_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(ROOT, 'tools', 'run_demo.py'))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    return run_demo


@pytest.mark.parametrize('learned', [True, False])
def test_demo_table_over_seeds(learned):
    """`run_demo.py --seeds N`: mean ± std and the paired t-test over the
    seeds that learned; a seed whose pretraining did not is listed, never
    compared."""
    run_demo = _run_demo_module()

    def column(top1, ap):
        return dict(top1=top1, mean_class=top1, chance=19.0), {
            'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': 2 * ap,
            'coco/bbox_AR@100': 3 * ap}

    runs = {}
    for s in range(3):
        (kv, dv), (kr, dr) = column(30.0 + s, 0.04 + s / 100), column(
            20.0, 0.02)
        boot = dict(p=0.01, diff=0.0)
        runs[s] = dict(
            knn=dict(vicreg=kv, random=kr,
                     mcnemar=dict(p=1e-4, n=1000, diff=0.1)),
            det=dict(vicreg=dv, random=dr),
            bootstrap={'bbox_mAP': boot, 'bbox_AR@100': boot},
            gate=dict(learned=learned or s < 2, checks=[]))
    table = run_demo.tables(runs)
    if learned:
        # vicreg kNN top-1 0.30, 0.31, 0.32: mean 0.31, sample std 0.01
        assert 'Over 3 seed(s)' in table
        assert '| vicreg | 0.310 ± 0.010 | 0.310 ± 0.010 | 0.050 ± 0.010 |' \
            in table
        assert '| random | 0.200 ± 0.000 |' in table
        assert '| vicreg − random | +0.110 ± 0.010, t-test p=' in table
    else:  # seed 2 did not learn: the comparison is over seeds 0, 1
        assert 'Over 2 seed(s)' in table
        assert '| vicreg | 0.305 ± 0.007 |' in table
        assert 'Seeds [2]: the pretraining did not learn' in table
        assert '| 2 | DID NOT LEARN | vicreg |' in table
    assert '| 2 | ' in table  # every seed's figures are listed
    assert 'chance (most frequent validation class): 0.190' in table


def test_demo_reuses_a_cached_pretraining(tmp_path, monkeypatch):
    """Same config, options, data and seed: no second training; another
    seed or --fresh: a new one."""
    run_demo = _run_demo_module()
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'manifest.json').write_text(json.dumps(dict(checksum='abc')))
    trained = []

    def fake_stage(name, cmd, log_dir, epochs=0):
        work_dir = cmd[cmd.index('--work-dir') + 1]
        trained.append(cmd[cmd.index('--seed') + 1])
        run = osp.join(work_dir, '20260101_000000', 'vis_data')
        os.makedirs(run)
        with open(osp.join(run, 'scalars.json'), 'w') as f:
            f.write(json.dumps(dict(iter=1, loss_var=1.0)) + '\n')
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(work_dir, 'epoch_1.pth'))
        return 0.0

    monkeypatch.setattr(run_demo, 'run_stage', fake_stage)

    def train_cmd(config, work_dir, opts, seed):
        return ['train', '--work-dir', work_dir, '--seed', str(seed)]

    def pretrain(seed, fresh=False):
        args = argparse.Namespace(fresh=fresh, launcher_gpus=1)
        return run_demo.pretrain(seed, args, str(tmp_path / f'w{seed}'),
                                 str(data), run_demo.QUICK, train_cmd,
                                 str(tmp_path))

    assert not pretrain(0)['cached'] and trained == ['0']
    assert pretrain(0)['cached'] and trained == ['0']
    assert not pretrain(1)['cached'] and trained == ['0', '1']
    assert not pretrain(0, fresh=True)['cached']
    assert trained == ['0', '1', '0']
    # other data: retrained
    (data / 'manifest.json').write_text(json.dumps(dict(checksum='xyz')))
    assert not pretrain(0)['cached'] and trained == ['0', '1', '0', '0']
