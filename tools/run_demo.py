#!/usr/bin/env python
"""The whole pipeline on generated demo data, in one command.

generate data -> convert labels to COCO -> pretrain VICReg (ResNet-18) on
object-centric unlabeled images, with the object-crop kNN probe -> check
that the pretraining learned (variance term, emb_std, RankMe, kNN against
the same seed's random init, McNemar) -> fine-tune Faster R-CNN from the
VICReg backbone and from that random init, same seed, data order and head
init -> evaluate both on the validation split -> paired tests and a table.

``--seeds N`` repeats everything after the data with seeds 0..N-1 and adds
mean ± std, the paired differences and a paired t-test over seeds. The
pretraining and each fine-tune are cached by (config, options, seed, data
or backbone file): a second run reuses them, ``--fresh`` retrains.
``--semi`` adds Soft Teacher (opt-in: see docs/semi_supervised.md). Every
stage is one of the project's own tools, run as a user would; each stage's
log goes to ``<work-dir>/seed<S>/logs/<stage>.log``.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split

from projects.detection.evaluation.paired_ap import (ImageWeightedCOCO,
                                                     paired_bootstrap)
from projects.vicreg.evaluation.pretrain_gate import (check_pretraining,
                                                      load_train_records,
                                                      summarize)
from projects.vicreg.evaluation.significance import mcnemar, paired_t

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

PRETRAIN_CFG = ('configs/vicreg/'
                'vicreg_resnet18-proj512_1xb128-coslr-6e_demo-objects32.py')
# one detector config for both columns: they differ in the backbone file
DET_CFG = 'configs/faster_rcnn/faster-rcnn_r18-pre_fpn_1xb4-3e_demo-6cls.py'
SEMI_CFG = ('configs/soft_teacher/'
            'soft-teacher_faster-rcnn_r18-pre_fpn_1xb4-150it_demo-6cls.py')
COLUMNS = ('vicreg', 'random')

DEFAULT = dict(
    # object-centric unlabeled images (one object each, 40 px) for VICReg;
    # 400 validation images give ~1,000 kNN queries (s.e. <= 1.6 points)
    data=['--num-unlabeled', '8000', '--unlabeled-size', '40',
          '--object-centric', '--num-train', '300', '--num-val', '400'],
    pretrain=[], det=[],
    # --semi: 2,000 generated scenes of 96 px as the unlabeled stream
    scenes=[],
    semi=['train_cfg.max_iters=75', 'train_cfg.val_interval=1000',
          'default_hooks.checkpoint.interval=75'])
# The same stages on a sliver of the data: a smoke test (the tests run it).
QUICK = dict(
    data=['--num-unlabeled', '256', '--unlabeled-size', '40',
          '--object-centric', '--num-train', '12', '--num-val', '6'],
    pretrain=['train_cfg.max_epochs=1'],
    det=['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'],
    scenes=['--num-unlabeled', '16', '--num-train', '1', '--num-val', '1'],
    semi=['train_cfg.max_iters=3', 'train_cfg.val_interval=1000',
          'default_hooks.checkpoint.interval=3'])

# One intra-op thread per stage unless OMP_NUM_THREADS is set: torch's
# default (one per core) plus the loader workers oversubscribe a 2-core
# machine (docs/demo.md).
STAGE_ENV = dict(OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
                 PYTHONUNBUFFERED='1')
SHOW_PROGRESS = True  # off when seeds run in parallel (--jobs)
# Config.fromfile and pycocotools' stdout redirection are not thread-safe:
# with --jobs, in-process work runs one seed at a time (stages are
# subprocesses and run in parallel).
IN_PROCESS = threading.Lock()
EPOCH_RE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-dir', default='data/demo')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and one epoch per stage (smoke test)')
    parser.add_argument('--seeds', type=int, default=1,
                        help='run the comparison with seeds 0..N-1')
    parser.add_argument('--fresh', action='store_true',
                        help='retrain the pretraining even if cached')
    parser.add_argument('--semi', action='store_true',
                        help='add the Soft Teacher column (opt-in)')
    parser.add_argument('--bootstrap', type=int, default=1000,
                        help='paired bootstrap resamples of the validation '
                        'images')
    parser.add_argument('--jobs', type=int, default=1,
                        help='seeds run at once: each stage uses one core '
                        '(OMP_NUM_THREADS=1), so on a 2-core machine 2 '
                        'halves a --seeds run (progress bars off)')
    parser.add_argument('--launcher-gpus', type=int, default=1,
                        help='processes per stage; >1 uses tools/dist_*.sh')
    args = parser.parse_args()
    if args.seeds < 1 or args.jobs < 1:
        parser.error('--seeds and --jobs must be >= 1')
    return args


def max_epochs(config: str, overrides: list) -> int:
    for item in overrides:
        if item.startswith('train_cfg.max_epochs='):
            return int(item.split('=', 1)[1])
    return load_config(config).train_cfg.max_epochs


def load_config(config: str):
    from mmengine.config import Config
    with IN_PROCESS:
        return Config.fromfile(osp.join(ROOT, config))


def run_stage(name: str, cmd: list, log_dir: str, epochs: int = 0) -> float:
    """Run one tool, logging to a file and drawing a progress bar; returns
    the seconds it took."""
    from tqdm import tqdm
    log_path = osp.join(log_dir, f'{name}.log')
    start = time.time()
    bar = tqdm(total=epochs or None, desc=f'{name:<22}', unit='ep',
               disable=not SHOW_PROGRESS,
               mininterval=1 if sys.stdout.isatty() else 30,
               bar_format='{desc} {percentage:3.0f}%|{bar:30}| '
               '{n:.1f}/{total_fmt} ep [{elapsed}<{remaining}]'
               if epochs else '{desc} {elapsed}')
    with open(log_path, 'w', buffering=1) as log:  # line: tail -f works
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
    seconds = time.time() - start
    print(f'  {name} done in {seconds:.0f} s, log: {log_path}')
    return seconds


def latest_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def hook_option(config: str, hook: str, key: str, value) -> str:
    """``--cfg-options`` item setting ``key`` of the custom hook ``hook``."""
    hooks = load_config(config).custom_hooks
    index = [h['type'] for h in hooks].index(hook)
    return f'custom_hooks.{index}.{key}={value}'


def run_key(config: str, options: list, seed: int, procs: int,
            inputs: list) -> str:
    """What a training run depends on: the resolved config, the overrides,
    the seed, the number of processes and its inputs (strings)."""
    text = load_config(config).pretty_text
    blob = json.dumps([text, sorted(options), *inputs, seed, procs])
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def is_cached(work_dir: str, stage: str, key: str, fresh: bool,
              *outputs) -> bool:
    """``work_dir`` holds a finished ``stage`` with this key and its
    outputs."""
    key_file = osp.join(work_dir, f'{stage}_key')
    if fresh or not osp.isfile(key_file):
        return False
    with open(key_file) as f:
        return f.read().strip() == key and all(
            osp.isfile(osp.join(work_dir, out)) for out in outputs)


def mark_cached(work_dir: str, stage: str, key: str) -> None:
    with open(osp.join(work_dir, f'{stage}_key'), 'w') as f:
        f.write(key + '\n')


def pretrain(seed, args, work, data, options, train_cmd, logs) -> dict:
    """Train VICReg unless this work dir holds a finished run with the same
    key; returns its checkpoint and training records."""
    vicreg_dir = osp.join(work, 'vicreg')
    labeled = osp.join(data, 'labeled')
    opts = [f'train_dataloader.dataset.data_root={data}/unlabeled',
            hook_option(PRETRAIN_CFG, 'ObjectCropKNNHook', 'data_root',
                        labeled), *options['pretrain']]
    with open(osp.join(data, 'manifest.json')) as f:
        data_sum = json.load(f)['checksum']  # the generator's parameters
    key = run_key(PRETRAIN_CFG, opts, seed, args.launcher_gpus, [data_sum])
    cached = is_cached(vicreg_dir, 'pretrain', key, args.fresh,
                       'last_checkpoint')
    if cached:
        print(f'  reusing the pretraining in {vicreg_dir} (same config, '
              f'data and seed; --fresh retrains)')
    else:
        shutil.rmtree(vicreg_dir, ignore_errors=True)
        run_stage('pretrain_vicreg',
                  train_cmd(PRETRAIN_CFG, vicreg_dir, opts, seed), logs,
                  max_epochs(PRETRAIN_CFG, opts))
        mark_cached(vicreg_dir, 'pretrain', key)
    return dict(checkpoint=latest_checkpoint(vicreg_dir),
                records=load_train_records(vicreg_dir), cached=cached,
                work_dir=vicreg_dir)


def detector_options(config, labeled, backbone, outfile_prefix, extra):
    """--cfg-options of a detector run on ``labeled`` from ``backbone``."""
    return [f'train_dataloader.dataset.data_root={labeled}/',
            *[f'{loader}.dataset.data_root={labeled}/' for loader in
              ('val_dataloader', 'test_dataloader')],
            *[f'{ev}.ann_file={labeled}/annotations/validation.json'
              for ev in ('val_evaluator', 'test_evaluator')],
            f'test_evaluator.outfile_prefix={outfile_prefix}',
            f'model.backbone.init_cfg.checkpoint={backbone}', *extra]


def run_seed(seed: int, args, work: str, data: str, options: dict,
             train_cmd) -> dict:
    """Pretrain, check, probe, fine-tune both columns and test them."""
    py = sys.executable
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    labeled = osp.join(data, 'labeled')
    tag = f' (seed {seed})' if args.seeds > 1 else ''

    print(f'[3/6] pretraining VICReg (ResNet-18) on the unlabeled '
          f'images{tag}')
    pre = pretrain(seed, args, work, data, options, train_cmd, logs)
    print(f'  VICReg checkpoint: {pre["checkpoint"]}')

    print(f'[4/6] kNN probe on the object crops: VICReg vs the same seed\'s '
          f'random init{tag}')
    knn_json = osp.join(work, 'knn.json')
    random_ckpt = osp.join(work, 'random_init_backbone.pth')
    run_stage('knn_probe', [
        py, 'tools/analysis_tools/knn_eval.py', PRETRAIN_CFG,
        pre['checkpoint'], 'random', '--seed', str(seed), '--data-root',
        labeled, '--out', knn_json, '--save-random', random_ckpt], logs)
    with open(knn_json) as f:
        vic, rnd = json.load(f)
    knn_test = mcnemar(vic.pop('correct'), rnd.pop('correct'))
    checks = check_pretraining(pre['records'], knn_test['diff'],
                               knn_test['p'])
    gate = summarize(checks)
    print(gate_report(gate, seed))

    result = dict(knn=dict(vicreg=vic, random=rnd, mcnemar=knn_test),
                  gate=gate, det={}, pretrain_cached=pre['cached'])
    gt = osp.join(labeled, 'annotations', 'validation.json')
    coco = {}
    for name, backbone in (('vicreg', pre['checkpoint']),
                           ('random', random_ckpt)):
        print(f'[5/6] fine-tuning Faster R-CNN from the {name} backbone'
              f'{tag}')
        det_dir = osp.join(work, f'det_{name}')
        prefix = osp.join(det_dir, 'predictions')
        opts = detector_options(DET_CFG, labeled, backbone, prefix,
                                options['det'])
        # same config, options, seed and backbone bytes: a finished
        # fine-tune and test are reused as the pretraining is
        key = run_key(DET_CFG, opts, seed, args.launcher_gpus,
                      [file_digest(backbone)])
        if is_cached(det_dir, 'finetune', key, args.fresh, 'metrics.json',
                     'predictions.bbox.json'):
            print(f'  reusing the fine-tune and test in {det_dir}')
        else:
            shutil.rmtree(det_dir, ignore_errors=True)
            run_stage(f'finetune_{name}', train_cmd(DET_CFG, det_dir, opts,
                                                     seed), logs,
                      max_epochs(DET_CFG, opts))
            run_stage(f'test_{name}', [
                py, 'tools/test.py', DET_CFG, latest_checkpoint(det_dir),
                '--work-dir', det_dir, '--cfg-options', *opts], logs)
            mark_cached(det_dir, 'finetune', key)
        with open(osp.join(det_dir, 'metrics.json')) as f:
            result['det'][name] = json.load(f)
        with IN_PROCESS:
            coco[name] = ImageWeightedCOCO(gt, prefix + '.bbox.json')
    with IN_PROCESS:
        result['bootstrap'] = paired_bootstrap(
            coco['vicreg'], coco['random'], args.bootstrap, seed)

    if args.semi:
        result['semi'] = run_semi(
            seed, args, work, data, labeled, options, train_cmd, logs,
            latest_checkpoint(osp.join(work, 'det_vicreg')))

    print(f'[6/6] plots{tag}')
    run_stage('plots', [
        py, 'tools/analysis_tools/plot_logs.py', pre['work_dir'],
        *[osp.join(work, f'det_{n}') for n in COLUMNS], '--out',
        osp.join(work, 'plots')], logs)
    return result


def run_semi(seed, args, work, data, labeled, options, train_cmd, logs,
             ckpt) -> dict:
    """Soft Teacher from the VICReg column's supervised fine-tune (the
    burn-in) on labeled images + unlabeled scenes (the pretraining's images
    are single objects: a detector's unlabeled stream needs whole scenes,
    generated beside them with their boxes held out), and its control: the
    same run with the unlabeled loss weighted 0 (same steps, labeled
    batches and EMA teacher). Returns both metrics, the paired bootstrap
    semi - control and the last logged pseudo-box precision/recall."""
    py = sys.executable
    scenes = scenes_dir(data)
    quality = hook_option(SEMI_CFG, 'PseudoLabelQualityHook', 'ann_file',
                          osp.join(scenes, 'unlabeled_boxes.json'))
    gt = osp.join(labeled, 'annotations', 'validation.json')
    out, coco = {}, {}
    for name, extra in (('vicreg_semi', []), ('vicreg_semi0', [
            'model.semi_train_cfg.unsup_weight=0.0'])):
        det_dir = osp.join(work, f'det_{name}')
        prefix = osp.join(det_dir, 'predictions')
        opts = [f'load_from={ckpt}',
                f'train_dataloader.dataset.datasets.0.data_root={labeled}/',
                f'train_dataloader.dataset.datasets.1.data_root={scenes}/'
                f'unlabeled/',
                *[f'{loader}.dataset.data_root={labeled}/' for loader in
                  ('val_dataloader', 'test_dataloader')],
                *[f'{ev}.ann_file={gt}'
                  for ev in ('val_evaluator', 'test_evaluator')],
                f'test_evaluator.outfile_prefix={prefix}', quality,
                *options['semi'], *extra]
        what = ('Soft Teacher' if not extra else
                'its control, unlabeled loss weight 0')
        print(f'[5/6] {what}, from the VICReg fine-tune (--semi)')
        shutil.rmtree(det_dir, ignore_errors=True)
        run_stage(f'finetune_{name}', train_cmd(SEMI_CFG, det_dir, opts,
                                                seed), logs)
        run_stage(f'test_{name}', [
            py, 'tools/test.py', SEMI_CFG, latest_checkpoint(det_dir),
            '--work-dir', det_dir, '--cfg-options', *opts], logs)
        with open(osp.join(det_dir, 'metrics.json')) as f:
            out[name] = json.load(f)
        with IN_PROCESS:
            coco[name] = ImageWeightedCOCO(gt, prefix + '.bbox.json')
    with IN_PROCESS:
        boot = paired_bootstrap(coco['vicreg_semi'], coco['vicreg_semi0'],
                                args.bootstrap, seed)
    return dict(det=out, bootstrap=boot,
                pseudo=last_pseudo_quality(osp.join(work, 'det_vicreg_semi')))


def scenes_dir(data: str) -> str:
    """Where --semi's scenes are generated (main(), before the seeds)."""
    return data.rstrip('/') + '_scenes'


def last_pseudo_quality(det_dir: str) -> dict:
    """The last ``pseudo_*`` values PseudoLabelQualityHook logged."""
    last = {}
    for path in glob.glob(osp.join(det_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if any(k.startswith('pseudo_') for k in rec):
                    last = {k: v for k, v in rec.items()
                            if k.startswith('pseudo_')}
    return last


def semi_lines(seed: int, semi: dict) -> list:
    """Table rows of the --semi runs of one seed."""
    rows = []
    for name in ('vicreg_semi', 'vicreg_semi0'):
        m = semi['det'][name]
        rows.append(f'| {seed} | {name} | {m["coco/bbox_mAP"]:.3f} | '
                    f'{m["coco/bbox_mAP_50"]:.3f} | '
                    f'{m["coco/bbox_AR@100"]:.3f} |')
    a, b = semi['det']['vicreg_semi'], semi['det']['vicreg_semi0']
    cells = []
    for key in ('bbox_mAP', 'bbox_mAP_50', 'bbox_AR@100'):
        cell = f'{a["coco/" + key] - b["coco/" + key]:+.3f}'
        if key in semi['bootstrap']:
            _, p = _boot(key)(semi)
            cell += (f' (bootstrap p={p:.2g})' if isinstance(p, float)
                     else f' (bootstrap p{p})')
        cells.append(cell)
    rows.append(f'| {seed} | difference | ' + ' | '.join(cells) + ' |')
    return rows


def gate_report(gate: dict, seed: int) -> str:
    verdict = ('LEARNED' if gate['learned'] else
               'DID NOT LEARN: its detectors are not compared')
    lines = [f'  pretraining check, seed {seed}: {verdict}']
    for c in gate['checks']:
        lines.append(f'    [{"ok" if c["passed"] else "FAIL"}] '
                     f'{c["name"]}: {c["detail"]}')
    return '\n'.join(lines)


# table rows: (label, getter of a seed's column value)
METRICS = [
    ('kNN top-1', lambda r, c: r['knn'][c]['top1'] / 100),
    ('kNN balanced', lambda r, c: r['knn'][c]['mean_class'] / 100),
    ('AP', lambda r, c: r['det'][c]['coco/bbox_mAP']),
    ('AP50', lambda r, c: r['det'][c]['coco/bbox_mAP_50']),
    ('AR100', lambda r, c: r['det'][c]['coco/bbox_AR@100']),
]
# the per-seed paired test of each compared metric
def _boot(key):
    def get(r):
        b = r['bootstrap'][key]
        # no resample at or below 0: p is below the bootstrap's resolution
        p = b['p'] if b['p'] > 0 else f'<{1 / b.get("resamples", 1000):.0g}'
        return 'bootstrap', p
    return get


PAIRED = {
    'kNN top-1': lambda r: ('McNemar', r['knn']['mcnemar']['p']),
    'AP': _boot('bbox_mAP'),
    'AR100': _boot('bbox_AR@100'),
}


def mean_std(values: list) -> str:
    if len(values) < 2:
        return f'{values[0]:.3f}' if values else 'n/a'
    return f'{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}'


def tables(runs: dict) -> str:
    """Each column (mean ± std over the seeds that learned), the paired
    difference with its tests, and every seed's figures."""
    seeds = sorted(runs)
    ok = [s for s in seeds if runs[s]['gate']['learned']]
    flagged = [s for s in seeds if s not in ok]
    lines = []
    if flagged:
        lines += [f'Seeds {flagged}: the pretraining did not learn (see the '
                  f'check above); they are listed, never compared.', '']
    if ok:
        head = '| | ' + ' | '.join(m[0] for m in METRICS) + ' |'
        lines += [f'Over {len(ok)} seed(s) whose pretraining learned:', '',
                  head, '|---|' + '---|' * len(METRICS)]
        for col in COLUMNS:
            lines.append(f'| {col} | ' + ' | '.join(
                mean_std([get(runs[s], col) for s in ok])
                for _, get in METRICS) + ' |')
        cells = []
        for label, get in METRICS:
            t = paired_t([get(runs[s], 'vicreg') for s in ok],
                         [get(runs[s], 'random') for s in ok])
            cell = f'{t["mean"]:+.3f}'
            if len(ok) > 1:
                cell += f' ± {t["std"]:.3f}, t-test p={t["p"]:.2g}'
            cells.append(cell)
        lines.append('| vicreg − random | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Each seed (paired difference vicreg − random, with its '
              'p-value: McNemar on the kNN queries, paired bootstrap over '
              'validation images for AP and AR100):', '',
              '| seed | pretraining | column | ' + ' | '.join(
                  m[0] for m in METRICS) + ' |',
              '|---|---|---|' + '---|' * len(METRICS)]
    for s in seeds:
        r = runs[s]
        state = 'learned' if r['gate']['learned'] else 'DID NOT LEARN'
        for col in COLUMNS:
            lines.append(f'| {s} | {state} | {col} | ' + ' | '.join(
                f'{get(r, col):.3f}' for _, get in METRICS) + ' |')
        cells = []
        for label, get in METRICS:
            cell = f'{get(r, "vicreg") - get(r, "random"):+.3f}'
            if label in PAIRED:
                test, p = PAIRED[label](r)
                cell += (f' ({test} p={p:.2g})' if isinstance(p, float)
                         else f' ({test} p{p})')
            cells.append(cell)
        lines.append(f'| {s} | {state} | difference | ' + ' | '.join(cells)
                     + ' |')
    semi = [s for s in seeds if 'semi' in runs[s]]
    if semi:
        lines += ['', '--semi: Soft Teacher from the VICReg fine-tune '
                  '(vicreg_semi) against the same run with the unlabeled '
                  'loss weighted 0 (vicreg_semi0); last logged pseudo-box '
                  'precision / recall at each threshold below the table:',
                  '', '| seed | run | AP | AP50 | AR100 |',
                  '|---|---|---|---|---|']
        for s in semi:
            lines += semi_lines(s, runs[s]['semi'])
        for s in semi:
            q = runs[s]['semi']['pseudo']
            lines.append(f'seed {s}: ' + ', '.join(
                f'{k} {v:.3f}' for k, v in sorted(q.items())))
    queries = runs[seeds[0]]['knn']['mcnemar']['n']
    chance = runs[seeds[0]]['knn']['vicreg'].get('chance')
    if chance is not None:
        lines += ['', f'kNN chance (most frequent validation class): '
                  f'{chance / 100:.3f}'
                  f'; {queries} queries per seed']
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
                                data, '--quiet', *options['data']], logs)

    print('[2/6] converting YAML labels to COCO json')
    labeled = osp.join(data, 'labeled')
    for split in ('training', 'validation'):
        run_stage(f'convert_{split}', [
            py, 'tools/dataset_converters/yaml_to_coco.py', labeled, split,
            osp.join(labeled, 'annotations', f'{split}.json')
        ], logs)

    if args.semi:  # once, before seeds run in parallel (--jobs)
        print('[2/6] generating scenes for --semi (unlabeled stream, boxes '
              'held out)')
        run_stage('generate_scenes', [
            py, 'tools/generate_demo_data.py', '--out', scenes_dir(data),
            '--quiet', *options['scenes']], logs)

    # one folder per seed whatever --seeds says: a later --seeds N run
    # reuses the cached pretraining of `make demo` (seed 0)
    def one_seed(seed):
        return run_seed(seed, args, osp.join(work, f'seed{seed}'), data,
                        options, train_cmd)

    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor
        global SHOW_PROGRESS
        SHOW_PROGRESS = False
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {s: pool.submit(one_seed, s) for s in range(args.seeds)}
            runs = {s: f.result() for s, f in futures.items()}
    else:
        runs = {s: one_seed(s) for s in range(args.seeds)}

    table = tables(runs)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(runs, f, indent=1)
    print('\nkNN probe (fraction of validation object crops; balanced = '
          'mean per-class) and Faster R-CNN on the demo validation split, '
          'VICReg vs the same seed\'s random init, same budget:\n')
    print(table)
    print(f'\ntotal time {time.time() - t0:.0f} s')
    print(f'everything is under {work}: VICReg checkpoint(s), knn.json, '
          f'det_*/ (validation_results.txt, per-class AP, metrics.json, '
          f'predictions.bbox.json), plots/, results.md, results.json')


if __name__ == '__main__':
    main()
