"""End-to-end VICReg pretraining throughput from a folder of PNGs, real
data loaders on all cores, same process, same device, interleaved.

Sides:
- ``official``: an ImageFolder-like dataset (PIL open + convert RGB) with
  the official TrainTransform (projects/vicreg/reference),
  ``torch.utils.data.DataLoader`` (pin_memory, persistent workers), the
  official step (projects/vicreg/reference: OfficialVICReg + LARS +
  AMP on GPU).
- ``ours``: our config's loader (UnlabeledImageFolder + mmpretrain views,
  mmengine ``Runner.build_dataloader``) and ``model.train_step`` with our
  VICRegLARS / (Amp)OptimWrapper.
- ``ours_gpuviews``: the -gpuviews config: workers decode + pack uint8 only,
  VICRegGPUViewsPreprocessor makes both views on the device.

Each segment runs ``--iters`` iterations of one side; the first
``--skip`` (>= the loader's prefetched batches, filled while the other side
ran) are not timed. Median pairs/s over segments; ratio line last
(ours_gpuviews / official and ours / official).

    python tools/analysis_tools/bench_pretrain_e2e.py --small   # CPU, tiny
    python tools/analysis_tools/bench_pretrain_e2e.py           # GPU
"""
import copy
import os
import os.path as osp
import tempfile

import harness as H
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))

FULL_CONFIG = 'configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled.py'
SMALL_CONFIG = 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py'
GPU_CONFIG = ('configs/vicreg/'
              'vicreg_resnet50_1xb128-coslr-230e_unlabeled-gpuviews.py')


class PNGFolder(torch.utils.data.Dataset):
    """ImageFolder without classes (the official loader's access pattern)."""

    def __init__(self, root, transform):
        self.paths = sorted(
            osp.join(root, f) for f in os.listdir(root) if f.endswith('PNG'))
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        with open(self.paths[i], 'rb') as f:
            img = Image.open(f).convert('RGB')
        return self.transform(img)


def ours_cfg(args, folder, gpuviews):
    from mmengine.config import Config
    name = SMALL_CONFIG if args.small else FULL_CONFIG
    cfg = Config.fromfile(osp.join(ROOT, name))
    if gpuviews:
        gcfg = Config.fromfile(osp.join(ROOT, GPU_CONFIG))
        cfg.train_dataloader.dataset.pipeline = \
            gcfg.train_dataloader.dataset.pipeline
        pre = copy.deepcopy(gcfg.data_preprocessor)
        pre.size = args.size
        pre.sigma = (0.1 * args.size / 224, 2.0 * args.size / 224)
        cfg.data_preprocessor = pre
    dl = copy.deepcopy(cfg.train_dataloader)
    dl.batch_size = args.batch
    dl.num_workers = args.workers
    dl.persistent_workers = True
    dl.pin_memory = args.device.type == 'cuda'
    dl.dataset.data_root = folder
    return cfg, dl


def build_ours(args, folder, gpuviews):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS

    import projects.vicreg  # noqa: F401
    init_default_scope('mmpretrain')
    cfg, dl_cfg = ours_cfg(args, folder, gpuviews)
    loader = Runner.build_dataloader(dl_cfg, seed=0)
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(cfg.model).to(args.device)
    if args.device.type == 'cuda':
        ow = copy.deepcopy(cfg.optim_wrapper)
        ow.type, ow.loss_scale = 'AmpOptimWrapper', 'dynamic'
    else:
        ow = dict(type='OptimWrapper',
                  optimizer=copy.deepcopy(cfg.optim_wrapper.optimizer))
    ow['optimizer']['lr'] = 0.075
    ow = build_optim_wrapper(model, ow)

    def step(data):
        model.train_step(data, ow)

    return loader, step


def build_official(args, folder):
    from projects.vicreg.reference import (build_official_step,
                                           official_train_transform)
    ds = PNGFolder(folder, official_train_transform(args.size))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=args.batch, num_workers=args.workers,
        pin_memory=args.device.type == 'cuda', shuffle=True,
        drop_last=True, persistent_workers=True)
    _, ref_step = build_official_step(
        'resnet18' if args.small else 'resnet50',
        '512-512-512' if args.small else '8192-8192-8192', 0.075,
        args.device, amp=args.device.type == 'cuda')

    def step(views):
        x, y = views
        ref_step(x.to(args.device, non_blocking=True),
                 y.to(args.device, non_blocking=True))

    return loader, step


class Side:

    def __init__(self, loader, step):
        self.loader, self.step, self.it = loader, step, None

    def next(self):
        while True:
            if self.it is None:
                self.it = iter(self.loader)
            try:
                return next(self.it)
            except StopIteration:
                self.it = None


def main():
    parser = H.make_parser(__doc__)
    parser.add_argument('--images', type=int, default=None)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--workers', type=int, default=None)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--skip', type=int, default=None)
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--copies', type=int, default=None,
                        help='files = images x copies (full: 1024 x 8)')
    parser.add_argument('--sides', default='official,ours,ours_gpuviews')
    parser.add_argument('--data', default=None,
                        help='existing PNG folder (default: generated)')
    args = parser.parse_args()
    workers = args.workers or (os.cpu_count() or 2)
    prefetched = 2 * workers  # DataLoader prefetch_factor 2
    H.apply_preset(
        args,
        small=dict(size=64, batch=8, workers=workers, images=96, copies=1,
                   rounds=3, skip=2),
        full=dict(size=224, batch=128, workers=workers, images=1024,
                  copies=8, rounds=3, skip=prefetched + 2))
    args.iters = args.iters or (args.skip + (3 if args.small else 20))
    args.device = H.get_device(threads=1 if args.small else None)
    small = args.small
    os.environ.setdefault('VICREG_CACHE_DIR', tempfile.mkdtemp())
    torch.manual_seed(0)
    # What mmengine's Runner does with our configs' env_cfg.mp_cfg: OpenCV
    # single-threaded in the main process, hence in the forked workers
    # (otherwise every worker's cv2 ops start a thread per core). PIL, the
    # official side's library, is single-threaded anyway.
    from mmengine.config import Config
    from mmengine.utils.dl_utils import set_multi_processing
    mp_cfg = Config.fromfile(osp.join(ROOT,
                                      FULL_CONFIG)).env_cfg.mp_cfg
    set_multi_processing(**mp_cfg, distributed=False)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data
        if folder is None:
            folder = osp.join(tmp, 'unlabeled')
            os.makedirs(folder)
            paths = H.make_pngs(folder, args.images,
                                          size=96 if small else 224)
            # repeat the files so an epoch spans many batches (a loader
            # restarts at each epoch end)
            import shutil
            for c in range(1, args.copies):
                for k, p in enumerate(paths):
                    shutil.copyfile(
                        p, osp.join(folder, f'{c * len(paths) + k}.PNG'))
        sides = {}
        for name in args.sides.split(','):
            if name == 'official':
                sides[name] = Side(*build_official(args, folder))
            elif name == 'ours':
                sides[name] = Side(*build_ours(args, folder, False))
            elif name == 'ours_gpuviews':
                sides[name] = Side(*build_ours(args, folder, True))
        for side in sides.values():  # warm-up: workers, cudnn
            for _ in range(2):
                side.step(side.next())

        def skip(name):  # refill the loader's prefetch, untimed
            for _ in range(args.skip):
                sides[name].step(sides[name].next())

        def timed(side):
            def run():
                for _ in range(args.iters - args.skip):
                    side.step(side.next())
            return run

        times, _ = H.interleave(
            {name: timed(side) for name, side in sides.items()}, args.rounds,
            args.device, prepare=skip)
        res = {}
        for name, ts in times.items():
            runs = [args.batch * (args.iters - args.skip) / t for t in ts]
            res[name] = H.median(runs)
            H.emit('pretrain_e2e', side=name, pairs_per_s=round(res[name], 2),
                   runs=[round(r, 2) for r in runs], batch=args.batch,
                   workers=args.workers, images=args.images * args.copies,
                   crop=args.size, device=H.device_name(args.device),
                   small=small)
        H.emit_ratio('pretrain_e2e', **{
            f'{k}_over_official': round(v / res['official'], 3)
            for k, v in res.items() if k != 'official' and 'official' in res
        })
        os._exit(0)  # persistent workers of 3 loaders: skip slow teardown


if __name__ == '__main__':
    main()
