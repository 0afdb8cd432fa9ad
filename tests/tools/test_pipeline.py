"""End-to-end: torchrun (2 gloo processes) for both stages, and the demo.

Slow: each test runs the real tools as a user would.
"""
import json
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
    conversion, pretraining, three fine-tunes (the third Soft Teacher),
    evaluation, plots, table."""
    work = tmp_path / 'work'
    out = run_ok([sys.executable, 'tools/run_demo.py', '--quick', '--work-dir',
                 str(work), '--data-dir', str(tmp_path / 'data')],
                timeout=900)
    table = (work / 'results.md').read_text()
    # kNN top-1, AP, AP50, AR100; vicreg_semi: Soft Teacher from VICReg
    for init in ('vicreg', 'random', 'vicreg_semi'):
        assert re.search(rf'^\| {init} \|( [\d.]+ \|){{4}}$', table,
                         re.M), table
    assert table.strip() in out
    for name in ('det_vicreg_init', 'det_random_init', 'det_vicreg_semi'):
        assert (work / name / 'validation_results.txt').is_file()
        assert (work / name / 'metrics.json').is_file()
    assert list((work / 'plots').glob('*.png'))
    assert list((work / 'plots').glob('*_knn.png'))  # the probe was logged
    assert (work / 'knn.json').is_file()
    # the detector really started from the VICReg checkpoint
    log = (work / 'logs' / 'finetune_vicreg_init.log').read_text()
    assert 'backbone: loaded' in log


def test_demo_table_over_seeds():
    """`run_demo.py --seeds N`: mean ± std per column and each seed's row."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(ROOT, 'tools', 'run_demo.py'))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)

    def column(top1, ap):
        return dict(knn=dict(top1=top1, chance=19.0),
                    det={'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': 2 * ap,
                         'coco/bbox_AR@100': 3 * ap})
    runs = {s: dict(vicreg_init=column(30.0 + s, 0.04 + s / 100),
                    random_init=column(20.0, 0.02)) for s in range(3)}
    table = run_demo.tables(runs, ['vicreg_init', 'random_init'])
    # vicreg kNN top-1 0.30, 0.31, 0.32: mean 0.31, sample std 0.01
    assert '| vicreg | 0.310 ± 0.010 | 0.050 ± 0.010 |' in table
    assert '| random | 0.200 ± 0.000 |' in table
    assert '| 2 | vicreg | 0.320 | 0.060 | 0.120 | 0.180 |' in table
    assert 'chance (most frequent validation class): 0.190' in table
    one = run_demo.tables({0: runs[0]}, ['vicreg_init', 'random_init'])
    assert '| vicreg | 0.300 | 0.040 | 0.080 | 0.120 |' in one
    assert 'each seed' not in one
