#!/usr/bin/env python
"""Generate a small synthetic data set in the competition's layout.

    python tools/generate_demo_data.py --out data/demo \
        [--num-unlabeled 2000 --num-train 300 --num-val 100 --seed 0]

Layout written under ``--out`` (exactly like the competition data)::

    unlabeled/{0..U-1}.PNG                      square, --unlabeled-size px
    labeled/training/images/{1..T}.JPEG
    labeled/training/labels/{1..T}.yml
    labeled/validation/images/{T+1..T+V}.JPEG   (numbering continues, like
    labeled/validation/labels/{T+1..T+V}.yml     the competition's 30001..)
    unlabeled_boxes.json                        the unlabeled images' boxes,
                                                held out (COCO; for
                                                PseudoLabelQualityHook only)
    manifest.json                               parameters + checksum

Label files look like the competition's::

    bboxes:
    - [38, 10, 87, 64]      # xmin, ymin, xmax, ymax in pixels (ints)
    image_size: [200, 173]  # width, height
    labels: [cup or mug, dog]

Each image shows 1-4 objects of a few classes (names from the competition's
100-class list) that differ in shape and texture, with random colours, on a
cluttered noisy background; the unlabeled images show the same kinds of
objects. Everything is drawn from a fixed seed (numpy + OpenCV + PIL, no
download): the same arguments give the same bytes. Re-running with the same
arguments when the data is complete returns at once.
"""
import argparse
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import yaml
from PIL import Image

# the competition's 100 classes, in its order (index = label id)
from projects.detection.datasets import CLASSES

# Demo classes: (competition name, shape, texture). Shapes and textures both
# differ between classes; colours are random per object.
DEMO_CLASSES = (
    ('cup or mug', 'disc', 'stripes'),
    ('bird', 'triangle', 'dots'),
    ('hat with a wide brim', 'ring', 'solid'),
    ('person', 'cross', 'solid'),
    ('dog', 'square', 'checker'),
    ('lizard', 'ellipse', 'crosshatch'),
)
DEMO_CLASS_NAMES = tuple(c[0] for c in DEMO_CLASSES)
assert all(name in CLASSES for name in DEMO_CLASS_NAMES)

# Bump when the drawing changes, so that old data is regenerated.
GENERATOR_VERSION = 1
MANIFEST = 'manifest.json'
# Beside unlabeled/, never inside it: no training stream lists it.
UNLABELED_BOXES = 'unlabeled_boxes.json'
SPLIT_IDS = {'unlabeled': 0, 'training': 1, 'validation': 2}


# --------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------
def _colour(rng, avoid=None):
    """A random saturated-ish RGB colour, far enough from ``avoid``."""
    for _ in range(20):
        c = rng.integers(0, 256, 3)
        if avoid is None or np.abs(c - avoid).sum() > 200:
            return c
    return 255 - np.asarray(avoid)


def _background(rng, h, w):
    """Low-frequency colour noise + clutter (lines, blobs) + pixel noise."""
    base = rng.integers(40, 216, 3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    for octave in (4, 8, 16):
        small = rng.normal(0, 40 / octave ** 0.3, (octave, octave, 3))
        img += cv2.resize(small.astype(np.float32), (w, h),
                          interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    # clutter: random line segments and small blobs (no class shapes)
    n = int(rng.integers(6, 14) * (h * w) / (200 * 200)) + 2
    for _ in range(n):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.6:
            p1 = tuple(int(v) for v in (rng.integers(0, w), rng.integers(0, h)))
            p2 = tuple(int(v) for v in (rng.integers(0, w), rng.integers(0, h)))
            cv2.line(img, p1, p2, c, int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, 8)), int(rng.integers(2, 8)))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                        c, -1, cv2.LINE_AA)
    return img


def _shape_mask(rng, shape, s):
    """Float mask (s x s, values 0..1) of ``shape`` filling roughly the box."""
    m = np.zeros((s, s), np.uint8)
    c = (s - 1) / 2.0
    r = s / 2.0 - 1
    sh = 4  # sub-pixel bits for anti-aliased drawing
    f = 1 << sh

    def P(x, y):
        return int(round(x * f)), int(round(y * f))

    if shape == 'disc':
        cv2.circle(m, P(c, c), int(r * f), 255, -1, cv2.LINE_AA, sh)
    elif shape == 'ring':
        cv2.circle(m, P(c, c), int(r * f), 255, -1, cv2.LINE_AA, sh)
        inner = r * rng.uniform(0.45, 0.65)
        cv2.circle(m, P(c, c), int(inner * f), 0, -1, cv2.LINE_AA, sh)
    elif shape == 'triangle':
        a0 = rng.uniform(0, 2 * np.pi)
        pts = [P(c + r * np.cos(a0 + k * 2 * np.pi / 3),
                 c + r * np.sin(a0 + k * 2 * np.pi / 3)) for k in range(3)]
        cv2.fillPoly(m, [np.array(pts, np.int32)], 255, cv2.LINE_AA, sh)
    elif shape == 'cross':
        t = r * rng.uniform(0.28, 0.4)
        a = rng.uniform(0, np.pi / 2)
        for rot in (a, a + np.pi / 2):
            d = np.array([np.cos(rot), np.sin(rot)])
            n = np.array([-d[1], d[0]])
            corners = [np.array([c, c]) + sx * r * d + sy * t * n
                       for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            cv2.fillPoly(m, [np.array([P(*p) for p in corners], np.int32)],
                         255, cv2.LINE_AA, sh)
    elif shape == 'square':
        a = rng.uniform(0, np.pi / 2)
        half = r / max(abs(np.cos(a)) + abs(np.sin(a)), 1e-6)
        d = np.array([np.cos(a), np.sin(a)])
        n = np.array([-d[1], d[0]])
        corners = [np.array([c, c]) + half * (sx * d + sy * n)
                   for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        cv2.fillPoly(m, [np.array([P(*p) for p in corners], np.int32)],
                     255, cv2.LINE_AA, sh)
    elif shape == 'ellipse':
        ang = float(rng.uniform(0, 180))
        minor = r * rng.uniform(0.3, 0.45)
        cv2.ellipse(m, P(c, c), (int(r * f), int(minor * f)), ang, 0, 360,
                    255, -1, cv2.LINE_AA, sh)
    else:
        raise ValueError(f'unknown shape {shape!r}')
    return m.astype(np.float32) / 255.0


def _texture(rng, texture, s, c1, c2):
    """s x s x 3 texture of ``texture`` in colours c1 (main) and c2."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    period = max(3.0, s / rng.uniform(3.5, 6.0))
    if texture == 'solid':
        pat = np.zeros((s, s), np.float32)
    elif texture == 'stripes':
        a = rng.uniform(0, np.pi)
        u = xx * np.cos(a) + yy * np.sin(a)
        pat = ((u / period) % 1.0 < 0.5).astype(np.float32)
    elif texture == 'checker':
        a = rng.uniform(0, np.pi / 2)
        u = xx * np.cos(a) + yy * np.sin(a)
        v = -xx * np.sin(a) + yy * np.cos(a)
        pat = (((np.floor(u / period) + np.floor(v / period)) % 2) == 0)
        pat = pat.astype(np.float32)
    elif texture == 'crosshatch':
        a = rng.uniform(0, np.pi / 2)
        u = xx * np.cos(a) + yy * np.sin(a)
        v = -xx * np.sin(a) + yy * np.cos(a)
        p = period * 0.7
        pat = (((u / p) % 1.0 < 0.25) | ((v / p) % 1.0 < 0.25))
        pat = pat.astype(np.float32)
    elif texture == 'dots':
        pat = np.zeros((s, s), np.uint8)
        step = max(4, int(period * 0.8))
        rad = max(1, step // 4)
        off = int(rng.integers(0, step))
        for y in range(off, s, step):
            for x in range(off + (step // 2) * ((y // step) % 2), s, step):
                cv2.circle(pat, (x, y), rad, 1, -1)
        pat = pat.astype(np.float32)
    else:
        raise ValueError(f'unknown texture {texture!r}')
    if texture == 'solid':  # mild shading so solid objects are not flat
        g = rng.uniform(-0.25, 0.25, 2)
        shade = 1 + g[0] * (xx / s - 0.5) + g[1] * (yy / s - 0.5)
        out = c1[None, None, :] * shade[..., None]
    else:
        out = (c1[None, None, :] * (1 - pat[..., None])
               + c2[None, None, :] * pat[..., None])
    return out.astype(np.float32)


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
             - inter)
    return inter / union if union > 0 else 0.0


def render(rng, w, h, n_obj, min_obj, max_obj):
    """Draw ``n_obj`` objects on a background. Returns (img, boxes, labels)."""
    img = _background(rng, h, w).astype(np.float32)
    boxes, labels = [], []
    for _ in range(n_obj):
        for _try in range(30):
            s = int(rng.integers(min_obj, max_obj + 1))
            s = min(s, w - 2, h - 2)
            x0 = int(rng.integers(0, w - s + 1))
            y0 = int(rng.integers(0, h - s + 1))
            cand = (x0, y0, x0 + s, y0 + s)
            if all(_iou(cand, b) < 0.1 for b in boxes):
                break
        else:
            continue  # no room: fewer objects
        cls = int(rng.integers(0, len(DEMO_CLASSES)))
        _, shape, texture = DEMO_CLASSES[cls]
        mask = _shape_mask(rng, shape, s)
        c1 = _colour(rng)
        c2 = _colour(rng, avoid=c1)
        tex = _texture(rng, texture, s, c1.astype(np.float32),
                       c2.astype(np.float32))
        region = img[y0:y0 + s, x0:x0 + s]
        region[:] = region * (1 - mask[..., None]) + tex * mask[..., None]
        ys, xs = np.nonzero(mask > 0.5)
        if len(xs) == 0:
            continue
        boxes.append([x0 + int(xs.min()), y0 + int(ys.min()),
                      x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1])
        labels.append(DEMO_CLASS_NAMES[cls])
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # sensor noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    # keep only the final (tight) boxes of objects that were drawn
    return img, boxes, labels


def image_rng(seed, split, idx):
    """Independent stream per image: same (seed, split, idx) -> same image."""
    return np.random.default_rng([seed, SPLIT_IDS[split], idx])


def labeled_sample(seed, split, idx, min_size=160, max_size=256):
    rng = image_rng(seed, split, idx)
    w = int(rng.integers(min_size, max_size + 1))
    h = int(rng.integers(min_size, max_size + 1))
    n = int(rng.integers(1, 5))
    short = min(w, h)
    return render(rng, w, h, n, max(16, short // 7), max(24, short // 2))


def unlabeled_sample(seed, idx, size=96, object_centric=False):
    """A scene of 1-3 objects, or (``object_centric``) one object filling
    half to all of the image, as a detector's object crops look.
    Returns (img, boxes, labels)."""
    rng = image_rng(seed, 'unlabeled', idx)
    if object_centric:
        return render(rng, size, size, 1, size // 2, size - 2)
    n = int(rng.integers(1, 4))
    return render(rng, size, size, n, max(12, size // 6), max(20, size // 2))


def held_out_coco(samples, size):
    """COCO dict of ``[(idx, boxes, labels)]`` (category id = competition
    class index + 1, as the converter writes)."""
    images, annotations = [], []
    for idx, boxes, labels in samples:
        images.append(dict(id=idx, file_name=f'{idx}.PNG', width=size,
                           height=size))
        for (x1, y1, x2, y2), name in zip(boxes, labels):
            annotations.append(dict(
                id=len(annotations) + 1, image_id=idx,
                category_id=CLASSES.index(name) + 1,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                iscrowd=0))
    categories = [dict(id=CLASSES.index(n) + 1, name=n)
                  for n in DEMO_CLASS_NAMES]
    return dict(images=images, annotations=annotations,
                categories=categories)


def label_yaml(boxes, labels, w, h):
    data = {'bboxes': [list(map(int, b)) for b in boxes],
            'image_size': [int(w), int(h)],
            'labels': list(labels)}
    return yaml.safe_dump(data, default_flow_style=None, sort_keys=False,
                          width=1000)


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
def params_of(args):
    return {
        'generator_version': GENERATOR_VERSION,
        'seed': args.seed,
        'num_unlabeled': args.num_unlabeled,
        'num_train': args.num_train,
        'num_val': args.num_val,
        'unlabeled_size': args.unlabeled_size,
        'object_centric': args.object_centric,
        'min_size': args.min_size,
        'max_size': args.max_size,
        'jpeg_quality': args.jpeg_quality,
        'classes': list(DEMO_CLASS_NAMES),
    }


def checksum(params):
    blob = json.dumps(params, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def expected_counts(p):
    return {
        'unlabeled': p['num_unlabeled'],
        'labeled/training/images': p['num_train'],
        'labeled/training/labels': p['num_train'],
        'labeled/validation/images': p['num_val'],
        'labeled/validation/labels': p['num_val'],
    }


def is_complete(out, params):
    """True when ``out`` holds a finished run with exactly these parameters."""
    path = osp.join(out, MANIFEST)
    try:
        with open(path) as f:
            man = json.load(f)
    except (OSError, ValueError):
        return False
    if man.get('checksum') != checksum(params) or not man.get('complete'):
        return False
    for sub, n in expected_counts(params).items():
        d = osp.join(out, sub)
        if not osp.isdir(d) or len(os.listdir(d)) != n:
            return False
    return osp.isfile(osp.join(out, UNLABELED_BOXES))


def _save(img, path, fmt, quality):
    buf = io.BytesIO()
    pil = Image.fromarray(img)
    if fmt == 'JPEG':
        pil.save(buf, 'JPEG', quality=quality)
    else:
        pil.save(buf, 'PNG')
    with open(path, 'wb') as f:
        f.write(buf.getvalue())


def _write_manifest(out, manifest):
    os.makedirs(out, exist_ok=True)
    tmp = osp.join(out, MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, osp.join(out, MANIFEST))


def generate(args):
    params = params_of(args)
    out = args.out
    if not args.force and is_complete(out, params):
        print(f'{out}: already generated with these parameters '
              f'({MANIFEST} checksum matches); nothing to do')
        return 0
    ours = [osp.join(out, 'unlabeled'), osp.join(out, 'labeled'),
            osp.join(out, UNLABELED_BOXES)]
    if any(osp.exists(p) for p in ours):
        if not (osp.isfile(osp.join(out, MANIFEST)) or args.force):
            raise SystemExit(
                f'error: {out} already holds unlabeled/ or labeled/ but no '
                f'{MANIFEST} from this tool; refusing to overwrite it. '
                f'Pick another --out, or pass --force to replace them.')
        for p in ours:  # parameters changed or an earlier run was cut short
            if osp.isfile(p):
                os.remove(p)
            shutil.rmtree(p, ignore_errors=True)
    manifest = dict(params, checksum=checksum(params), complete=False)
    _write_manifest(out, manifest)  # marks the folder as ours while writing

    from tqdm import tqdm
    os.makedirs(osp.join(out, 'unlabeled'), exist_ok=True)
    held_out = []
    for idx in tqdm(range(args.num_unlabeled), desc='unlabeled',
                    disable=args.quiet, mininterval=0.5):
        img, boxes, labels = unlabeled_sample(
            args.seed, idx, args.unlabeled_size, args.object_centric)
        _save(img, osp.join(out, 'unlabeled', f'{idx}.PNG'), 'PNG', None)
        held_out.append((idx, boxes, labels))
    with open(osp.join(out, UNLABELED_BOXES), 'w') as f:
        json.dump(held_out_coco(held_out, args.unlabeled_size), f)

    n_boxes = 0
    first = 1
    for split, num in (('training', args.num_train),
                       ('validation', args.num_val)):
        img_dir = osp.join(out, 'labeled', split, 'images')
        lab_dir = osp.join(out, 'labeled', split, 'labels')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(lab_dir, exist_ok=True)
        for n in tqdm(range(first, first + num), desc=split,
                      disable=args.quiet, mininterval=0.5):
            img, boxes, labels = labeled_sample(args.seed, split, n,
                                                args.min_size, args.max_size)
            h, w = img.shape[:2]
            _save(img, osp.join(img_dir, f'{n}.JPEG'), 'JPEG',
                  args.jpeg_quality)
            with open(osp.join(lab_dir, f'{n}.yml'), 'w') as f:
                f.write(label_yaml(boxes, labels, w, h))
            n_boxes += len(boxes)
        first += num

    manifest['splits'] = {
        'unlabeled': [0, args.num_unlabeled - 1],
        'training': [1, args.num_train],
        'validation': [args.num_train + 1, args.num_train + args.num_val],
    }
    manifest['num_boxes'] = n_boxes
    manifest['complete'] = True
    _write_manifest(out, manifest)
    print(f'{out}: wrote {args.num_unlabeled} unlabeled, {args.num_train} '
          f'training and {args.num_val} validation images '
          f'({n_boxes} boxes, classes: {", ".join(DEMO_CLASS_NAMES)})')
    return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Generate a small synthetic data set in the '
        'competition layout (deterministic, no download).')
    p.add_argument('--out', default='data/demo', help='output folder')
    p.add_argument('--num-unlabeled', type=int, default=2000)
    p.add_argument('--num-train', type=int, default=300)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--unlabeled-size', type=int, default=96,
                   help='side of the square unlabeled images (px)')
    p.add_argument('--object-centric', action='store_true',
                   help='one object per unlabeled image, filling half to '
                   'all of it (default: scenes of 1-3 objects)')
    p.add_argument('--min-size', type=int, default=160,
                   help='smallest side of a labeled image (px)')
    p.add_argument('--max-size', type=int, default=256,
                   help='largest side of a labeled image (px)')
    p.add_argument('--jpeg-quality', type=int, default=90)
    p.add_argument('--force', action='store_true',
                   help='regenerate even if the data is already there')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    args = p.parse_args(argv)
    for k in ('num_unlabeled', 'num_train', 'num_val'):
        if getattr(args, k) < 0:
            p.error(f'--{k.replace("_", "-")} must be >= 0')
    if args.seed < 0:
        p.error('--seed must be >= 0')
    if args.unlabeled_size < 32:
        p.error('--unlabeled-size must be >= 32')
    if not 64 <= args.min_size <= args.max_size:
        p.error('need 64 <= --min-size <= --max-size')
    return args


def main(argv=None):
    return generate(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
