#!/usr/bin/env python
"""The whole pipeline on the embedded demo data, in one command.

generate data -> convert labels to COCO -> pretrain VICReg (ResNet-18, with
the object-crop kNN probe) -> kNN probe of the VICReg and of a random-init
backbone -> fine-tune Faster R-CNN from each COLUMN's backbone with the same
budget (supervised from VICReg and from random init, and, unless
``--no-semi``, semi-supervised from VICReg with Soft Teacher on the labeled +
unlabeled images, same number of images seen) -> evaluate on the validation
split -> side-by-side table and plots.
``--seeds N`` runs everything after the data N times (seeds 0..N-1) and
prints each run and mean +- std. Every stage is one of the project's own
tools, run as a user would; each stage's full log goes to
``<work-dir>/[seed<S>/]logs/<stage>.log``.
"""
import argparse
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

PRETRAIN_CFG = ('configs/vicreg/'
                'vicreg_resnet18-proj512-knn_1xb32-coslr-4e_demo.py')
# The compared detectors: (name, config, backbone init). init 'vicreg' is
# this run's pretraining checkpoint, None the config's own (random) init.
COLUMNS = [
    ('vicreg_init', 'configs/faster_rcnn/'
     'faster-rcnn_r18-vicreg-pre_fpn_1xb4-2e_competition-demo.py', 'vicreg'),
    ('random_init', 'configs/faster_rcnn/'
     'faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py', None),
    ('vicreg_semi', 'configs/soft_teacher/soft-teacher_faster-rcnn_r18-'
     'vicreg-pre_fpn_1xb4-150it_competition-demo.py', 'vicreg'),
]
SEMI = 'vicreg_semi'  # Soft Teacher: model.detector.*, two training sources
# The default demo's detector budget: one epoch, validated once by
# tools/test.py (no validation inside training): see README "Demo results"
# for the measured stage times behind it.
# Soft Teacher sees 2 labeled + 2 unlabeled images a step: 75 steps see as
# many images as one supervised epoch of the 300 training images at batch 4.
DEFAULT = dict(data=[], pretrain=[],
               det=['train_cfg.max_epochs=1', 'train_cfg.val_interval=100'],
               semi=['train_cfg.max_iters=75', 'train_cfg.val_interval=1000',
                     'default_hooks.checkpoint.interval=75'])
# The shorter variant the tests run: the same stages on a sliver of the data.
QUICK = dict(
    data=['--num-unlabeled', '64', '--num-train', '12', '--num-val', '6'],
    pretrain=['train_cfg.max_epochs=1'],
    det=['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'],
    semi=['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
          'default_hooks.checkpoint.interval=3'],
)
# table rows: (label, where, key)
METRICS = [('kNN top-1', 'knn', 'top1'), ('AP', 'det', 'coco/bbox_mAP'),
           ('AP50', 'det', 'coco/bbox_mAP_50'),
           ('AR100', 'det', 'coco/bbox_AR@100')]

# One intra-op thread per stage unless OMP_NUM_THREADS is set: torch's
# default (one thread per core) plus the data-loader workers oversubscribe a
# 2-core machine, and any other load then stalls the threads at every
# parallel region (measured side by side on the loaded 2-core box: VICReg
# demo 44.7 s/iteration with the default 2 threads vs 8.3 s with 1).
STAGE_ENV = dict(OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
                 PYTHONUNBUFFERED='1')

EPOCH_RE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-dir', default='data/demo')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and one epoch per stage (smoke test)')
    parser.add_argument('--seeds', type=int, default=1,
                        help='run the comparison with seeds 0..N-1 and '
                        'print mean +- std')
    parser.add_argument('--no-semi', action='store_true',
                        help='skip the Soft Teacher (semi-supervised) column')
    parser.add_argument('--launcher-gpus', type=int, default=1,
                        help='processes per stage; >1 uses tools/dist_*.sh')
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
                                env=dict(os.environ, **STAGE_ENV))
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


def hook_option(config: str, hook: str, key: str, value) -> str:
    """``--cfg-options`` item setting ``key`` of the custom hook ``hook``."""
    from mmengine.config import Config
    hooks = Config.fromfile(osp.join(ROOT, config)).custom_hooks
    index = [h['type'] for h in hooks].index(hook)
    return f'custom_hooks.{index}.{key}={value}'


def mean_std(values: list) -> str:
    if len(values) < 2:
        return f'{values[0]:.3f}' if values else 'n/a'
    return f'{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}'


def columns(args) -> list:
    return [c for c in COLUMNS if not (args.no_semi and c[0] == SEMI)]


def run_seed(seed: int, args, work: str, data: str, options: dict,
             train_cmd) -> dict:
    """Pretrain, probe, fine-tune and evaluate every column with ``seed``;
    returns {column: {'knn': {...}, 'det': {...}}}."""
    py = sys.executable
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    labeled = osp.join(data, 'labeled')
    tag = f' (seed {seed})' if args.seeds > 1 else ''

    print(f'[3/6] pretraining VICReg (ResNet-18) on the unlabeled '
          f'images{tag}')
    vicreg_dir = osp.join(work, 'vicreg')
    pre_opts = [f'train_dataloader.dataset.data_root={data}/unlabeled',
                hook_option(PRETRAIN_CFG, 'ObjectCropKNNHook', 'data_root',
                            labeled), *options['pretrain']]
    run_stage('pretrain_vicreg',
              train_cmd(PRETRAIN_CFG, vicreg_dir, pre_opts, seed), logs,
              max_epochs(PRETRAIN_CFG, pre_opts))
    ckpt = latest_checkpoint(vicreg_dir)
    print(f'  VICReg checkpoint: {ckpt}')

    print(f'[4/6] kNN probe on the object crops: VICReg vs random init{tag}')
    knn_json = osp.join(work, 'knn.json')
    run_stage('knn_probe', [
        py, 'tools/analysis_tools/knn_eval.py', PRETRAIN_CFG, ckpt, 'random',
        '--seed', str(seed), '--data-root', labeled, '--out', knn_json
    ], logs)
    with open(knn_json) as f:
        knn = {('vicreg_init' if r['checkpoint'] != 'random' else
                'random_init'): r for r in json.load(f)}

    results = {}
    for name, config, init in columns(args):
        print(f'[5/6] fine-tuning Faster R-CNN, {name.replace("_", " ")}'
              f'{tag}')
        det_dir = osp.join(work, f'det_{name}')
        semi = name == SEMI
        # config variables are resolved at load time: override each user
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
                *options['semi' if semi else 'det']]
        if init == 'vicreg':
            opts.append(f'model.{"detector." if semi else ""}backbone.'
                        f'init_cfg.checkpoint={ckpt}')
        # iteration-based Soft Teacher: no epoch progress bar
        run_stage(f'finetune_{name}', train_cmd(config, det_dir, opts, seed),
                  logs, 0 if semi else max_epochs(config, opts))
        print(f'  evaluating {name} on the validation split')
        run_stage(f'test_{name}', [
            py, 'tools/test.py', config, latest_checkpoint(det_dir),
            '--work-dir', det_dir, '--cfg-options', *opts
        ], logs)
        with open(osp.join(det_dir, 'metrics.json')) as f:
            # the semi column starts from the same VICReg backbone
            results[name] = dict(det=json.load(f), knn=knn.get(
                'vicreg_init' if semi else name, {}))

    print(f'[6/6] plots{tag}')
    run_stage('plots', [
        py, 'tools/analysis_tools/plot_logs.py', vicreg_dir,
        *[osp.join(work, f'det_{name}') for name, _, _ in columns(args)],
        '--out',
        osp.join(work, 'plots')
    ], logs)
    return results


def tables(runs: dict, names: list) -> str:
    """One row per column: each metric (mean +- std over the seeds), and,
    for several seeds, each seed's value."""
    seeds = sorted(runs)
    head = '| init | ' + ' | '.join(m[0] for m in METRICS) + ' |'
    lines = [head, '|---|' + '---|' * len(METRICS)]
    for name in names:
        cells = []
        for _, where, key in METRICS:
            vals = [runs[s][name][where].get(key, float('nan'))
                    for s in seeds]
            if where == 'knn':
                vals = [v / 100 for v in vals]  # percent -> fraction
            cells.append(mean_std(vals))
        lines.append(f'| {name.replace("_init", "")} | ' + ' | '.join(cells)
                     + ' |')
    if len(seeds) > 1:
        lines += ['', 'each seed:', '',
                  '| seed | init | ' + ' | '.join(m[0] for m in METRICS)
                  + ' |', '|---|---|' + '---|' * len(METRICS)]
        for s in seeds:
            for name in names:
                vals = [runs[s][name][w].get(k, float('nan')) /
                        (100 if w == 'knn' else 1) for _, w, k in METRICS]
                lines.append(f'| {s} | {name.replace("_init", "")} | '
                             + ' | '.join(f'{v:.3f}' for v in vals) + ' |')
    chance = [runs[s]['vicreg_init']['knn'].get('chance') for s in seeds]
    if chance and chance[0] is not None:
        lines += ['', f'kNN chance (most frequent validation class): '
                  f'{chance[0] / 100:.3f}']
    return '\n'.join(lines)


def main():
    args = parse_args()
    py = sys.executable
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data_dir)
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    options = QUICK if args.quick else DEFAULT
    t0 = time.time()

    def train_cmd(config, work_dir, opts, seed):
        if args.launcher_gpus > 1:
            return ['bash', 'tools/dist_train.sh', config,
                    str(args.launcher_gpus), '--work-dir', work_dir,
                    '--seed', str(seed), '--cfg-options', *opts]
        return [py, 'tools/train.py', config, '--work-dir', work_dir,
                '--seed', str(seed), '--cfg-options', *opts]

    print(f'[1/6] generating demo data in {data}')
    run_stage('generate_data', [py, 'tools/generate_demo_data.py', '--out',
                                data, *options['data']], logs)

    print('[2/6] converting YAML labels to COCO json')
    labeled = osp.join(data, 'labeled')
    for split in ('training', 'validation'):
        run_stage(f'convert_{split}', [
            py, 'tools/dataset_converters/yaml_to_coco.py', labeled, split,
            osp.join(labeled, 'annotations', f'{split}.json')
        ], logs)

    runs = {}
    for seed in range(args.seeds):
        seed_work = work if args.seeds == 1 else osp.join(work, f'seed{seed}')
        runs[seed] = run_seed(seed, args, seed_work, data, options,
                              train_cmd)

    table = tables(runs, [name for name, _, _ in columns(args)])
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(runs, f, indent=1)
    what = (f'{args.seeds} seeds, mean ± std' if args.seeds > 1 else
            'seed 0')
    print(f'\nkNN probe (fraction of validation object crops) and Faster '
          f'R-CNN on the demo validation split, same budget ({what}; '
          f'vicreg_semi: Soft Teacher, teacher evaluated, kNN of its '
          f'initial backbone):\n')
    print(table)
    print(f'\ntotal time {time.time() - t0:.0f} s')
    print(f'everything is under {work}: VICReg checkpoint(s), knn.json, '
          f'det_*/ (validation_results.txt, per-class AP, metrics.json), '
          f'plots/, results.md')


if __name__ == '__main__':
    main()
