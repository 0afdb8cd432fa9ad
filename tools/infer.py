#!/usr/bin/env python
"""Detect objects with a trained Faster R-CNN (MMDetection DetInferencer).

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out-dir DIR]

INPUT is an image, a folder of images, or ``val`` (the images of the
config's test split, e.g. data/labeled/validation/images/). Writes to
``--out-dir``:

- ``detections.json``: per image ``{"file", "image_id", "detections":
  [{"bbox": [x1, y1, x2, y2], "score", "label", "class"}]}`` (label 0..99 in
  the competition's class order), detections with score >= --score-thr;
- ``detections_coco.json``: for evaluation with pycocotools, so COMPLETE:
  every detection the model returns (score >= the config's
  ``model.test_cfg.rcnn.score_thr``, at most ``max_per_img`` per image, as
  ``tools/test.py`` evaluates), unrounded, as COCO results (category_id =
  label + 1, bbox = [x, y, w, h]); --score-thr does not apply to it (a
  cut-off list lowers AP);
- ``vis/<image>``: the images with boxes and class names (unless --no-vis).

The checkpoint is read through projects.compat's safe (weights_only) loader.
With a Soft Teacher config (configs/soft_teacher/) and its checkpoint, the
EMA teacher detects (``model.semi_test_cfg.predict_on``; ``student`` via
--cfg-options); tools/test.py evaluates the same way.
"""
import argparse
import json
import os
import os.path as osp
import sys

import projects.compat  # noqa: F401  (compatibility fixes first)

# isort: split

# isort: split
from mmengine.config import DictAction

IMAGE_EXTS = ('.jpeg', '.jpg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Faster R-CNN inference')
    parser.add_argument('config', help='detection config file')
    parser.add_argument('checkpoint', help='trained detector checkpoint')
    parser.add_argument('input', help="image, folder, or 'val'")
    parser.add_argument('--out-dir', default='outputs/infer')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='keep in detections.json and draw detections '
                        'with score >= this (detections_coco.json keeps '
                        'all, for evaluation)')
    parser.add_argument('--device', default=None,
                        help='cuda:0 / cpu (default: cuda if available)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--no-vis', action='store_true',
                        help='do not write images with drawn boxes')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'test_dataloader.dataset.data_root=... for INPUT val)')
    return parser.parse_args(argv)


def list_inputs(inp: str, cfg) -> list:
    if inp == 'val':
        ds = cfg.test_dataloader.dataset
        inp = osp.join(ds.get('data_root') or '', ds.data_prefix['img'])
    if osp.isdir(inp):
        files = [
            osp.join(inp, f) for f in os.listdir(inp)
            if osp.splitext(f)[1].lower() in IMAGE_EXTS
        ]
        def key(p):
            stem = osp.splitext(osp.basename(p))[0]
            return (0, int(stem), '') if stem.isdigit() else (1, 0, p)

        return sorted(files, key=key)
    if osp.isfile(inp):
        return [inp]
    raise FileNotFoundError(f'input {inp} is not an image or a folder')


def image_id(path: str):
    stem = osp.splitext(osp.basename(path))[0]
    return int(stem) if stem.isdigit() else None


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from mmdet.apis import DetInferencer
    from mmengine.config import Config
    from mmengine.runner.checkpoint import CheckpointLoader

    from projects.compat.checkpoint import load_from_local

    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    # DetInferencer reads local files through mmengine's CheckpointLoader;
    # make sure that is projects.compat's weights_only loader.
    loader = CheckpointLoader._get_checkpoint_loader(args.checkpoint)
    if loader is not load_from_local:
        raise RuntimeError('projects.compat checkpoint loader not active')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    inputs = list_inputs(args.input, cfg)
    if not inputs:
        raise FileNotFoundError(f'no images in {args.input}')
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    inferencer = DetInferencer(
        model=cfg, weights=args.checkpoint, device=device, show_progress=True)
    classes = inferencer.model.dataset_meta['classes']
    os.makedirs(args.out_dir, exist_ok=True)
    out = inferencer(
        inputs, batch_size=args.batch_size, out_dir=args.out_dir,
        pred_score_thr=args.score_thr, no_save_vis=args.no_vis,
        no_save_pred=True)
    per_image, coco = [], []
    for path, pred in zip(inputs, out['predictions']):
        dets = []
        for box, score, label in zip(pred['bboxes'], pred['scores'],
                                     pred['labels']):
            if image_id(path) is not None:  # all of them: for evaluation
                coco.append(dict(
                    image_id=image_id(path), category_id=int(label) + 1,
                    bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    score=float(score)))
            if score < args.score_thr:
                continue
            dets.append(dict(bbox=[round(float(v), 2) for v in box],
                             score=round(float(score), 5), label=int(label),
                             **{'class': classes[label]}))
        per_image.append(dict(file=path, image_id=image_id(path),
                              detections=dets))
    with open(osp.join(args.out_dir, 'detections.json'), 'w') as f:
        json.dump(per_image, f)
    with open(osp.join(args.out_dir, 'detections_coco.json'), 'w') as f:
        json.dump(coco, f)
    n = sum(len(p['detections']) for p in per_image)
    model_thr = cfg.model.get('test_cfg', {}).get('rcnn', {}).get('score_thr')
    print(f'{len(per_image)} images, {n} detections (score >= '
          f'{args.score_thr}) in detections.json, {len(coco)} (all, score >= '
          f'the model\'s {model_thr}) in detections_coco.json '
          f'-> {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
