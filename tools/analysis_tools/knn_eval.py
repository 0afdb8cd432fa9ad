#!/usr/bin/env python
"""Score backbones by the object-crop kNN probe, as ObjectCropKNNHook does.

    python tools/analysis_tools/knn_eval.py CONFIG CKPT [CKPT ...] \
        [--data-root data/labeled] [--seed 0] [--out knn.json]

CONFIG is a VICReg config with an ``ObjectCropKNNHook`` in its
``custom_hooks``: its settings (crops, caps, k, T, resolution) and
``model.backbone`` are used, so a checkpoint of a run gets the numbers the
hook logged in that run. Each CKPT is one of

* a checkpoint of this project (``backbone.*`` keys, e.g. ``epoch_N.pth``),
* an official VICReg / torchvision-layout ResNet (``resnet50.pth``),
  converted as ``tools/model_converters/torchvision_to_mmpretrain.py`` does,
* ``random``: the config's backbone, initialised with ``--seed``.

Prints a markdown table (top-1, top-5, mean per-class accuracy in percent,
and chance = the most frequent validation class). Top-5 means little with
few classes (the demo has 6): read top-1 and mean per-class there.
"""
import argparse
import json
import os
import os.path as osp

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='VICReg config with an ObjectCropKNNHook')
    p.add_argument('checkpoints', nargs='+', metavar='CKPT',
                   help='checkpoint path(s), or "random"')
    p.add_argument('--data-root', help='labeled data folder (default: the '
                   "hook's data_root)")
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the "random" initialisation')
    p.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    p.add_argument('--amp', choices=['auto', 'on', 'off'], default='auto',
                   help='autocast as the run did (auto: AmpOptimWrapper in '
                   'the config)')
    p.add_argument('--out', help='also write the results as json here '
                   '(with each validation crop\'s top-1 outcome, for paired '
                   'tests)')
    p.add_argument('--save-random', metavar='PATH',
                   help='write the "random" backbone as a checkpoint '
                   '(backbone.* keys) that a detector config can load '
                   'through init_cfg, e.g. for a paired baseline')
    return p.parse_args(argv)


def _cuda():
    import torch
    return torch.cuda.is_available()


def knn_settings(cfg, config_path: str) -> dict:
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'ObjectCropKNNHook']
    if not hooks:
        raise SystemExit(
            f'error: {config_path} has no ObjectCropKNNHook in custom_hooks; '
            f'add one (see configs/vicreg/vicreg_resnet50_1xb128-coslr-'
            f'230e_unlabeled.py)')
    settings = dict(hooks[0])
    for key in ('type', 'interval', 'eval_at_start', 'priority'):
        settings.pop(key, None)
    return settings


def build_backbone(cfg, checkpoint: str, seed: int):
    """The config's backbone (plain BN: identical in eval mode) with the
    checkpoint's weights, or randomly initialised with ``seed``."""
    import copy

    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS

    from projects.vicreg.converters import (BACKBONE_PREFIX,
                                            CheckpointConversionError,
                                            load_file,
                                            torchvision_to_mmpretrain)
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg.norm_cfg = dict(type='BN')
    if checkpoint == 'random':
        set_random_seed(seed)
        backbone = MODELS.build(backbone_cfg)
        backbone.init_weights()
        return backbone
    if not osp.isfile(checkpoint):
        raise SystemExit(f'error: checkpoint {checkpoint} does not exist '
                         f'(or pass "random")')
    try:
        state, depth, _ = torchvision_to_mmpretrain(load_file(checkpoint))
    except CheckpointConversionError as err:
        raise SystemExit(f'error: {checkpoint}: {err}')
    backbone_cfg.depth = depth
    backbone = MODELS.build(backbone_cfg)
    backbone.load_state_dict(
        {k[len(BACKBONE_PREFIX):]: v for k, v in state.items()}, strict=True)
    return backbone


def save_backbone(backbone, path: str) -> None:
    """``backbone``'s weights as a checkpoint with ``backbone.*`` keys."""
    import torch

    from projects.vicreg.converters import BACKBONE_PREFIX
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'state_dict': {BACKBONE_PREFIX + k: v.cpu() for k, v in
                               backbone.state_dict().items()}}, path)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    from projects.vicreg.evaluation import ObjectCropKNN, autocast_dtype
    if not MMLogger.check_instance_created('knn_eval'):  # no init spam
        MMLogger.get_instance('knn_eval', log_level='WARNING')
    cfg = Config.fromfile(args.config)
    init_default_scope('mmpretrain')
    settings = knn_settings(cfg, args.config)
    if args.data_root:
        settings['data_root'] = args.data_root
    knn = ObjectCropKNN(**settings)
    device = torch.device(args.device)
    amp = (cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'
           if args.amp == 'auto' else args.amp == 'on')
    amp_dtype = autocast_dtype(amp, device)
    chance = 100.0 * torch.bincount(knn.val.labels).max().item() / len(
        knn.val)
    rows = []
    for ckpt in args.checkpoints:
        backbone = build_backbone(cfg, ckpt, args.seed).to(device)
        if ckpt == 'random' and args.save_random:
            save_backbone(backbone, args.save_random)
        metrics = knn.evaluate(backbone, amp_dtype)
        rows.append(dict(checkpoint=ckpt, **metrics, chance=chance,
                         seconds=sum(v for k, v in knn.timing.items()
                                     if k.endswith('_s')),
                         correct=knn.last_correct.tolist()))
    print(f'kNN probe (k={knn.k}, T={knn.temperature}): {len(knn.train)} '
          f'training / {len(knn.val)} validation crops of '
          f'{settings["data_root"]}\n')
    print('| backbone | top-1 | top-5 | mean per-class | chance | s |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["checkpoint"]} | {r["top1"]:.2f} | {r["top5"]:.2f} | '
              f'{r["mean_class"]:.2f} | {r["chance"]:.2f} | '
              f'{r["seconds"]:.1f} |')
    if args.out:
        if osp.dirname(args.out):
            os.makedirs(osp.dirname(args.out), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
