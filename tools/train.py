#!/usr/bin/env python
"""Train from an MMPretrain (VICReg) or MMDetection (Faster R-CNN) config."""
import argparse
import signal


class _EarlySignals:
    """Records a time-limit warning (Slurm ``--signal=USR1@N``) that comes
    while the libraries load, instead of dying of it (SIGUSR1's default);
    PreemptionHook takes the recorded signal over when training starts."""

    def __init__(self):
        self.received = []

    def __call__(self, signum, frame):
        self.received.append(signum)


# before the slow imports below (hence E402)
signal.signal(signal.SIGUSR1, _EarlySignals())
import projects.compat  # noqa: E402,F401  (compatibility fixes first)

# isort: split
from mmengine.config import DictAction  # noqa: E402

from projects.engine.dist_timeout import \
    explain_distributed_timeout  # noqa: E402
from projects.launch import (build_runner, check_config,  # noqa: E402
                             close_distributed, load_config, set_local_rank)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir (if any)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (fp16)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual global batch size')
    parser.add_argument(
        '--seed', type=int, help='random seed of the run (model init, data '
        "order, views; data-loader workers derive theirs from it): sets the "
        "config's randomness.seed")
    parser.add_argument('--deterministic', action='store_true',
                        help='also ask for deterministic kernels '
                        '(randomness.deterministic=True)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_dataloader.batch_size=4)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    set_local_rank(args.local_rank)
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=args.seed)
    if args.deterministic:
        cfg.randomness = dict(cfg.get('randomness', {}), deterministic=True)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    check_config(cfg, 'train')  # missing paths, class count: fail now
    runner = build_runner(cfg)
    completed = False
    try:
        runner.train()
        completed = True
    except SystemExit as exc:  # PreemptionHook: all ranks stop together
        completed = exc.code in (0, None)
        raise
    except RuntimeError as exc:  # a hung rank: say so, with the setting
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        explain_distributed_timeout(exc, timeout, cfg.work_dir)
        raise
    finally:
        del runner  # its DDP wrapper holds the process group
        close_distributed(completed)
    # Done: a late time-limit warning must not kill the shutdown (Python's
    # finalisation puts handled signals back to their default, which for
    # USR1 terminates; a task killed so looks failed and gets requeued).
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


if __name__ == '__main__':
    main()
