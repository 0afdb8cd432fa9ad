"""Two-view VICReg augmentation cost per CPU core, PNG decode included.

Variants, interleaved round by round in one process (median reported):

- ``official``: the official ``augmentations.py`` TrainTransform written out
  plainly (torchvision + PIL), after ``Image.open(...).convert('RGB')``.
- ``ours``: the views of our baseline config
  (``configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled.py``:
  LoadImageFromFile + MultiView + PackInputs, with the cv2 jitter /
  grayscale / blur of ``projects/vicreg/datasets/transforms/fast_views.py``); uint8
  out, normalised by the data preprocessor on the device.
- ``mmpretrain``: the same pipeline with mmpretrain's stock view transforms
  (``mmpretrain::_base_/datasets/imagenet_bs32_byol.py``).
- ``gpuviews_worker``: the worker side of the -gpuviews config
  (LoadImageFromFile + PackInputs): decode and pack uint8 only; the views
  are then made on the device by ``projects/vicreg/models/utils/gpu_views.py``.
- ``gpuviews_on_cpu``: decode + pack + ``vicreg_views`` run on this CPU
  thread in batches (only to show the batched ops' CPU cost; on a GPU this
  part is device time).
- ``gpuviews_device`` (CUDA only): ``vicreg_views`` on a uint8 batch of
  ``--gpu-batch`` images already on the GPU: device ms per pair (timed
  with synchronisation; the number of pairs made equals --images rounded
  down to whole batches, at least one batch).

Prints one JSON line per variant, then the ratio line: official ms / ours
ms (the CPU-views speed-up per core), mmpretrain / official, and official /
gpuviews_worker (CPU work saved per pair by the GPU views).

    python tools/analysis_tools/bench_views.py --small   # < 1 min
    python tools/analysis_tools/bench_views.py           # 256 images
"""
import os
import os.path as osp
import tempfile

import harness as H
import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))

BASELINE_CONFIG = osp.join(ROOT, 'configs/vicreg/'
                           'vicreg_resnet50_1xb128-coslr-230e_unlabeled.py')
GPU_CONFIG = osp.join(ROOT, 'configs/vicreg/'
                      'vicreg_resnet50_1xb128-coslr-230e_unlabeled-'
                      'gpuviews.py')


def build_variants(args):
    import mmpretrain
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS  # noqa: F401
    from PIL import Image

    import projects.vicreg  # noqa: F401  (compat fixes before mmpretrain)
    from projects.vicreg.models.utils.gpu_views import vicreg_views
    init_default_scope('mmpretrain')

    from projects.vicreg.reference import official_train_transform
    official = official_train_transform()

    def run_official(paths):
        for p in paths:
            with open(p, 'rb') as f:
                img = Image.open(f).convert('RGB')
            official(img)

    baseline_cfg = Config.fromfile(BASELINE_CONFIG)
    our_pipe = Compose(baseline_cfg.train_dataloader.dataset.pipeline)

    def run_ours(paths):
        for p in paths:
            our_pipe(dict(img_path=p))

    stock_cfg = Config.fromfile(
        osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                 '_base_', 'datasets', 'imagenet_bs32_byol.py'))
    mm_pipe = Compose(stock_cfg.train_pipeline)

    def run_mm(paths):
        for p in paths:
            mm_pipe(dict(img_path=p))

    gpu_cfg = Config.fromfile(GPU_CONFIG)
    worker_pipe = Compose(gpu_cfg.train_dataloader.dataset.pipeline)

    def run_worker(paths):
        for p in paths:
            worker_pipe(dict(img_path=p))

    def run_gpu_on_cpu(paths):
        batch = [worker_pipe(dict(img_path=p))['inputs'] for p in paths]
        for k in range(0, len(batch), args.cpu_batch):
            x = torch.stack(batch[k:k + args.cpu_batch]).flip(1)
            vicreg_views(x)

    gpu = None
    if torch.cuda.is_available():
        paths0 = sorted(os.listdir(osp.dirname(args.paths[0])))
        gpu = torch.stack([
            worker_pipe(dict(img_path=osp.join(osp.dirname(args.paths[0]),
                                               p)))['inputs']
            for p in paths0[:args.gpu_batch]
        ]).cuda()

    def run_gpu_device(paths):
        # the device side: per pair time of the batched views on the GPU
        # (not a CPU cost); `paths` sets how many pairs are made.
        for _ in range(max(1, len(paths) // gpu.shape[0])):
            vicreg_views(gpu.flip(1))
        torch.cuda.synchronize()

    variants = dict(
        official=run_official,
        ours=run_ours,
        mmpretrain=run_mm,
        gpuviews_worker=run_worker)
    if not args.skip_cpu_gpuviews:
        variants['gpuviews_on_cpu'] = run_gpu_on_cpu
    if gpu is not None:
        variants['gpuviews_device'] = run_gpu_device
    return variants


def main():
    parser = H.make_parser(__doc__)
    parser.add_argument('--images', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--cpu-batch', type=int, default=16)
    parser.add_argument('--gpu-batch', type=int, default=128)
    parser.add_argument('--skip-cpu-gpuviews', action='store_true')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    H.apply_preset(args, small=dict(images=24, rounds=3),
                   full=dict(images=256, rounds=7))
    torch.set_num_threads(args.threads)
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    try:
        import cv2
        cv2.setNumThreads(args.threads)
    except ImportError:
        pass
    np.random.seed(0)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        paths = H.make_pngs(tmp, args.images)
        args.paths = paths
        variants = build_variants(args)
        for fn in variants.values():  # warm-up (imports, caches)
            fn(paths[:4])
        # the gpuviews_device variant synchronises itself
        times, _ = H.interleave(
            {name: (lambda fn=fn: fn(paths)) for name, fn in variants.items()},
            args.rounds)
    ms = {}
    for name, ts in times.items():
        per_pair = [t * 1e3 / len(paths) for t in ts]
        ms[name] = H.median(per_pair)
        H.emit('views', variant=name, ms_per_pair=round(ms[name], 3),
               runs_ms=[round(t, 3) for t in per_pair], images=args.images,
               threads=args.threads, small=args.small)
    H.emit_ratio(
        'views', official_over_ours=round(ms['official'] / ms['ours'], 3),
        mmpretrain_over_official=round(ms['mmpretrain'] / ms['official'], 3),
        official_over_gpuviews_worker=round(
            ms['official'] / ms['gpuviews_worker'], 2))


if __name__ == '__main__':
    main()
