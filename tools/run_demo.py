#!/usr/bin/env python
"""The whole pipeline on the embedded demo data, in one command.

generate data -> convert labels to COCO -> pretrain VICReg (ResNet-18) ->
fine-tune Faster R-CNN from that checkpoint AND from random init with the
same budget, and (unless --no-semi) semi-supervised from that checkpoint with
Soft Teacher on the labeled + unlabeled images, same images seen -> evaluate
each on the validation split -> side-by-side table and plots. Every stage is one of the project's own tools, run as a user
would; each stage's full log goes to ``<work-dir>/logs/<stage>.log``.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

PRETRAIN_CFG = 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py'
DET_VICREG_CFG = ('configs/faster_rcnn/'
                  'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py')
DET_RANDOM_CFG = ('configs/faster_rcnn/'
                  'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py')
DET_SEMI_CFG = ('configs/soft_teacher/soft-teacher_faster-rcnn_r18-vicreg-pre_'
                'fpn_1xb4-150it_competition-demo.py')

# The shorter variant the tests run: the same stages on a sliver of the data.
QUICK = dict(
    data=['--num-unlabeled', '64', '--num-train', '12', '--num-val', '6'],
    pretrain=['train_cfg.max_epochs=1'],
    det=['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'],
    semi=['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
          'default_hooks.checkpoint.interval=3'],
)

EPOCH_RE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-dir', default='data/demo')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and one epoch per stage (smoke test)')
    parser.add_argument('--launcher-gpus', type=int, default=1,
                        help='processes per stage; >1 uses tools/dist_*.sh')
    parser.add_argument('--no-semi', action='store_true',
                        help='skip the Soft Teacher (semi-supervised) column')
    return parser.parse_args()


def max_epochs(config: str, overrides: list) -> int:
    for item in overrides:
        if item.startswith('train_cfg.max_epochs='):
            return int(item.split('=', 1)[1])
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, config)).train_cfg.max_epochs


def run_stage(name: str, cmd: list, log_dir: str, epochs: int = 0) -> None:
    """Run one tool, logging to a file and drawing a progress bar."""
    from tqdm import tqdm
    log_path = osp.join(log_dir, f'{name}.log')
    start = time.time()
    bar = tqdm(total=epochs or None, desc=f'{name:<22}', unit='ep',
               mininterval=1 if sys.stdout.isatty() else 30,
               bar_format='{desc} {percentage:3.0f}%|{bar:30}| '
               '{n:.1f}/{total_fmt} ep [{elapsed}<{remaining}]'
               if epochs else '{desc} {elapsed}')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
        for line in proc.stdout:
            log.write(line)
            match = EPOCH_RE.search(line) if epochs else None
            if match:
                epoch, it, total = map(int, match.groups())
                bar.n = min(epochs, epoch - 1 + it / total)
                bar.refresh()
        code = proc.wait()
    if code == 0 and epochs:
        bar.n = epochs
    bar.close()
    if code != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-30:])
        sys.exit(f'stage "{name}" failed (exit {code}); last lines of '
                 f'{log_path}:\n{tail}')
    print(f'  done in {time.time() - start:.0f} s, log: {log_path}')


def latest_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def main():
    args = parse_args()
    py = sys.executable
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data_dir)
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    quick = QUICK if args.quick else dict(data=[], pretrain=[], det=[],
                                          semi=[])
    t0 = time.time()

    def train_cmd(config, work_dir, options):
        if args.launcher_gpus > 1:
            return ['bash', 'tools/dist_train.sh', config,
                    str(args.launcher_gpus), '--work-dir', work_dir,
                    '--cfg-options', *options]
        return [py, 'tools/train.py', config, '--work-dir', work_dir,
                '--cfg-options', *options]

    n = 6 if args.no_semi else 7  # steps
    print(f'[1/{n}] generating demo data in {data}')
    run_stage('generate_data', [py, 'tools/generate_demo_data.py', '--out',
                                data, *quick['data']], logs)

    print(f'[2/{n}] converting YAML labels to COCO json')
    labeled = osp.join(data, 'labeled')
    for split in ('training', 'validation'):
        run_stage(f'convert_{split}', [
            py, 'tools/dataset_converters/yaml_to_coco.py', labeled, split,
            osp.join(labeled, 'annotations', f'{split}.json')
        ], logs)

    print(f'[3/{n}] pretraining VICReg (ResNet-18) on the unlabeled images')
    vicreg_dir = osp.join(work, 'vicreg')
    pre_opts = [f'train_dataloader.dataset.data_root={data}/unlabeled',
                *quick['pretrain']]
    run_stage('pretrain_vicreg',
              train_cmd(PRETRAIN_CFG, vicreg_dir, pre_opts), logs,
              max_epochs(PRETRAIN_CFG, pre_opts))
    ckpt = latest_checkpoint(vicreg_dir)
    print(f'  VICReg checkpoint: {ckpt}')

    results = {}
    stages = [('vicreg_init', DET_VICREG_CFG, ckpt),
              ('random_init', DET_RANDOM_CFG, None)]
    if not args.no_semi:
        stages.append(('vicreg_semi', DET_SEMI_CFG, ckpt))
    for step, (name, config, init) in enumerate(stages, start=4):
        print(f'[{step}/{len(stages) + 4}] fine-tuning Faster R-CNN, '
              f'{name.replace("_", " ")}')
        det_dir = osp.join(work, f'det_{name}')
        semi = config == DET_SEMI_CFG
        # config variables are resolved at load time: override each user
        # (Soft Teacher: model.detector.*, two training sources)
        train_roots = ([f'train_dataloader.dataset.datasets.0.data_root='
                        f'{labeled}/',
                        f'train_dataloader.dataset.datasets.1.data_root='
                        f'{data}/unlabeled/'] if semi else
                       [f'train_dataloader.dataset.data_root={labeled}/'])
        opts = [*train_roots,
                *[f'{loader}.dataset.data_root={labeled}/' for loader in
                  ('val_dataloader', 'test_dataloader')],
                *[f'{ev}.ann_file={labeled}/annotations/validation.json'
                  for ev in ('val_evaluator', 'test_evaluator')],
                *quick['semi' if semi else 'det']]
        if init:
            opts.append(f'model.{"detector." if semi else ""}backbone.'
                        f'init_cfg.checkpoint={init}')
        # iteration-based: no epoch progress bar
        run_stage(f'finetune_{name}', train_cmd(config, det_dir, opts), logs,
                  0 if semi else max_epochs(config, opts))
        print(f'  evaluating {name} on the validation split')
        run_stage(f'test_{name}', [
            py, 'tools/test.py', config, latest_checkpoint(det_dir),
            '--work-dir', det_dir, '--cfg-options', *opts
        ], logs)
        with open(osp.join(det_dir, 'metrics.json')) as f:
            results[name] = json.load(f)

    print(f'[{len(stages) + 4}/{len(stages) + 4}] plots and the table')
    plots = osp.join(work, 'plots')
    run_stage('plots', [py, 'tools/analysis_tools/plot_logs.py', vicreg_dir,
                        *[osp.join(work, f'det_{name}') for name, _, _ in
                          stages], '--out', plots],
              logs)

    rows = [('AP', 'coco/bbox_mAP'), ('AP50', 'coco/bbox_mAP_50'),
            ('AR100', 'coco/bbox_AR@100')]
    table = ['| init | ' + ' | '.join(r[0] for r in rows) + ' |',
             '|---|' + '---|' * len(rows)]
    for name, metrics in results.items():
        table.append(f'| {name.replace("_init", "")} | ' + ' | '.join(
            f'{metrics.get(key, float("nan")):.3f}' for _, key in rows) + ' |')
    table = '\n'.join(table)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print('\nFaster R-CNN on the demo validation split, same budget '
          '(vicreg_semi: Soft Teacher, teacher evaluated):\n')
    print(table)
    print(f'\ntotal time {time.time() - t0:.0f} s')
    print(f'everything is under {work}:')
    print(f'  VICReg checkpoint   {ckpt}')
    for name in results:
        print(f'  {name:<18}  {osp.join(work, "det_" + name)}'
              ' (validation_results.txt, per-class AP, metrics.json)')
    print(f'  plots               {plots}')
    print(f'  table               {osp.join(work, "results.md")}')


if __name__ == '__main__':
    main()
