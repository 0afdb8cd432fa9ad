#!/usr/bin/env python
"""Evaluate a checkpoint with an MMPretrain or MMDetection config.

For detection configs whose evaluator is ``CompetitionCocoMetric`` it also
writes ``validation_results.txt`` (the 12-number COCO summary),
``per_class_ap.md``/``.csv`` and ``metrics.json`` to the work dir.
Soft Teacher configs (configs/soft_teacher/) evaluate the EMA teacher of the
checkpoint (``model.semi_test_cfg.predict_on='teacher'``).
"""
import argparse
import os.path as osp

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split
from mmengine.config import DictAction

from projects.launch import (build_runner, check_config,  # noqa
                             close_distributed, load_config, set_local_rank)


def parse_args():
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where results and logs go')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    set_local_rank(args.local_rank)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    cfg.load_from = args.checkpoint
    check_config(cfg, 'test')  # missing paths, class count: fail now
    runner = build_runner(cfg)
    completed = False
    try:
        metrics = runner.test()
        print(metrics)
        if cfg.default_scope == 'mmdet':
            write_detection_results(metrics, cfg.work_dir)
        completed = True
    finally:
        del runner  # its DDP wrapper holds the process group
        close_distributed(completed)


def write_detection_results(metrics: dict, work_dir: str) -> None:
    """With CompetitionCocoMetric: validation_results.txt (pycocotools
    summary), per_class_ap.{md,csv} and metrics.json in the work dir."""
    from mmengine.dist import is_main_process

    from projects.detection.evaluation.metrics.competition_coco_metric import \
        write_results
    if is_main_process():
        for path in write_results(metrics, work_dir):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
