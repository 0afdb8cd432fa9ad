#!/usr/bin/env python
"""Does VICReg learn on demo-like data on a CPU? A quick in-memory loop.

    python tools/analysis_tools/vicreg_feasibility.py --steps 400 \
        [--hue 0.5 --sat 0.8 --gray 0.5 --dim 512 --lr 0.3 --eta 0.02]

The project's own VICReg model, loss and LARS (built from the registries),
ResNet-18 and a 3-layer expander, on single objects drawn by
``tools/generate_demo_data.py`` (``--src`` px, one per image, as
``--object-centric``), with the two views made by the batched view ops of
``VICRegGPUViewsPreprocessor``. No loader, no runner: it prints the loss
terms, ``emb_std`` and RankMe every 25 steps and a weighted kNN (k=20,
T=0.07) of the pooled backbone features on 1,200 labeled objects every
``--eval`` steps, so a recipe can be tried in minutes before it becomes a
config. The study behind the demo's config: docs/demo.md.
"""
import argparse
import importlib.util
import math
import os.path as osp
import time

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split

import numpy as np
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--src', type=int, default=40, help='image side (px)')
    p.add_argument('--size', type=int, default=32, help='view side (px)')
    p.add_argument('--n', type=int, default=4096, help='unlabeled images')
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--steps', type=int, default=300)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--dim', type=int, default=512, help='expander width')
    p.add_argument('--opt', choices=['lars', 'adamw'], default='lars')
    p.add_argument('--lr', type=float, default=0.3)
    p.add_argument('--eta', type=float, default=0.02, help='LARS trust')
    p.add_argument('--wd', type=float, default=1e-4)
    p.add_argument('--scale', type=float, default=0.2, help='min crop area')
    p.add_argument('--hue', type=float, default=0.1)
    p.add_argument('--sat', type=float, default=0.2)
    p.add_argument('--gray', type=float, default=0.2)
    p.add_argument('--eval', type=int, default=100)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--save', help='write the final state dict here')
    return p.parse_args()


def generator_module():
    path = osp.join(ROOT, 'tools', 'generate_demo_data.py')
    spec = importlib.util.spec_from_file_location('generate_demo_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def single_objects(gen, n, seed, side):
    """(uint8 N x 3 x side x side, labels) of one object per image."""
    names = [c[0] for c in gen.DEMO_CLASSES]
    imgs, labels = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        img, _, lab = gen.render(rng, side, side, 1, side // 2, side - 2)
        if lab:
            imgs.append(img)
            labels.append(names.index(lab[0]))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


def build(args):
    from mmengine.optim import OptimWrapper
    from mmpretrain.registry import MODELS

    import projects.vicreg  # noqa: F401  (registers the model)
    from projects.vicreg.engine.optimizers.vicreg_lars import VICRegLARS
    model = MODELS.build(dict(
        type='VICReg',
        backbone=dict(type='ResNet', depth=18, norm_cfg=dict(type='BN'),
                      zero_init_residual=True),
        neck=dict(type='NonLinearNeck', in_channels=512,
                  hid_channels=args.dim, out_channels=args.dim,
                  num_layers=3, with_bias=True, with_last_bn=False,
                  with_last_bias=False, with_avg_pool=True,
                  norm_cfg=dict(type='BN1d')),
        head=dict(type='VICRegHead', loss=dict(type='VICRegLoss'))))
    model.init_weights()
    if args.opt == 'lars':
        opt = VICRegLARS(model.parameters(), lr=args.lr,
                         weight_decay=args.wd, momentum=0.9, eta=args.eta)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                weight_decay=args.wd)
    return model, OptimWrapper(opt)


@torch.no_grad()
def knn_top1(model, size, bank, bank_labels, queries, query_labels):
    from projects.vicreg.evaluation import (pooled_features, top_n_correct,
                                            weighted_knn_scores)
    model.eval()

    def feats(x):
        out = []
        for i in range(0, len(x), 256):
            v = F.interpolate(x[i:i + 256].float() / 255, size=size,
                              mode='bilinear', antialias=True,
                              align_corners=False)
            out.append(pooled_features(
                model.backbone, (v - IMAGENET_MEAN) / IMAGENET_STD))
        return torch.cat(out)

    scores = weighted_knn_scores(feats(bank), bank_labels, feats(queries),
                                 int(bank_labels.max()) + 1)
    model.train()
    return top_n_correct(scores, query_labels).float().mean().item()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from projects.vicreg.engine.hooks.collapse_monitor_hook import \
        embedding_stats
    from projects.vicreg.models.utils.gpu_views import vicreg_views
    gen = generator_module()
    unlabeled, _ = single_objects(gen, args.n, 1, args.src)
    bank, bank_labels = single_objects(gen, 1200, 2, args.src)
    queries, query_labels = single_objects(gen, 1200, 3, args.src)
    model, wrapper = build(args)
    common = dict(scale=(args.scale, 1.0), gray_prob=args.gray,
                  jitter=(0.4, 0.4, args.sat, args.hue))
    views = [dict(blur_prob=1.0, solarize_prob=0.0, **common),
             dict(blur_prob=0.1, solarize_prob=0.2, **common)]
    sigma = (0.1 * args.size / 224, 2.0 * args.size / 224)
    knn = (model, args.size, bank, bank_labels, queries, query_labels)
    print(f'kNN top-1 at step 0: {knn_top1(*knn):.3f}', flush=True)
    rng = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        # linear warm-up, then cosine to 0 over --steps
        lr = args.lr * (step / args.warmup if step <= args.warmup else 0.5 * (
            1 + math.cos(math.pi * step / args.steps)))
        for group in wrapper.optimizer.param_groups:
            group['lr'] = lr
        idx = torch.randint(0, len(unlabeled), (args.bs, ), generator=rng)
        v1, v2 = vicreg_views(unlabeled[idx], size=args.size,
                              blur='gaussian', views=views, sigma=sigma,
                              generator=rng)
        losses = model.loss([v1, v2], None)
        loss = sum(losses.values())
        wrapper.update_params(loss)
        if step % 25 == 0 or step == 1:
            st = embedding_stats(model.last_embeddings[0])
            terms = ' '.join(f'{k[5:]} {v.item():.2f}'
                             for k, v in losses.items())
            print(f'step {step} ({time.time() - t0:.0f} s): loss '
                  f'{loss.item():.2f} ({terms}) emb_std '
                  f'{st["emb_std"]:.3f} RankMe {st["rankme"]:.1f}',
                  flush=True)
        if step % args.eval == 0:
            print(f'kNN top-1 at step {step}: {knn_top1(*knn):.3f} '
                  f'({(time.time() - t0) / step:.2f} s/step)', flush=True)
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == '__main__':
    main()
