"""The competition's detection data: YAML -> COCO conversion (the library
side of ``tools/dataset_converters/yaml_to_coco.py``).

Layout: ``{root}/{split}/images/{n}.JPEG`` and
``{root}/{split}/labels/{n}.yml`` with ``bboxes`` (``[xmin, ymin, xmax,
ymax]`` pixels), ``labels`` (class names) and ``image_size``
(``[width, height]``).

COCO conventions used here (and by the dataset configs):

- image id = the file number ``n`` (stable across conversions);
- category id = class index + 1 (ids 1..100, in :data:`CLASSES` order), so
  mmdet's label ``i`` (0-based, background = ``num_classes``) is category
  ``i + 1``; ``"cup or mug"`` is label 0 and is an ordinary class;
- ``bbox = [xmin, ymin, xmax - xmin, ymax - ymin]``, ``area`` = width x height
  (as the competition's evaluation), ``iscrowd = 0``.
"""
import json
import math
import os
import os.path as osp
from collections import Counter
from multiprocessing import get_context
from typing import Dict, Iterable, List, Optional, Tuple

import yaml
from PIL import Image

from .datasets.competition_dataset import CLASSES

CLASS_TO_INDEX = {name: i for i, name in enumerate(CLASSES)}
CATEGORY_ID_OFFSET = 1  # category id = class index + 1
CATEGORIES = [
    dict(id=i + CATEGORY_ID_OFFSET, name=name, supercategory='object')
    for i, name in enumerate(CLASSES)
]
IMAGE_EXTS = ('.JPEG', '.jpeg', '.jpg', '.JPG', '.png', '.PNG')
LABEL_EXTS = ('.yml', '.yaml')

_Loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)

# Problem kinds. Images with a "skip" problem are left out of the json;
# "fatal" problems fail even without --strict; the rest are repaired.
SKIP_KINDS = ('missing_label', 'missing_image', 'bad_filename',
              'unreadable_image', 'empty_label', 'malformed_yaml',
              'length_mismatch', 'exif_rotated_labels')
FATAL_KINDS = ('unknown_class', )
REPAIR_KINDS = ('image_size_mismatch', 'bad_box', 'clipped_box',
                'degenerate_box', 'exif_orientation')
PROBLEM_KINDS = SKIP_KINDS + FATAL_KINDS + REPAIR_KINDS
PROBLEM_HELP = {
    'missing_label': 'image without a label file (image skipped)',
    'missing_image': 'label file without an image (label skipped)',
    'bad_filename': 'file name is not <integer>.<ext> (skipped)',
    'unreadable_image': 'image cannot be decoded (image skipped)',
    'empty_label': 'empty label file (image skipped)',
    'malformed_yaml': 'YAML parse error or missing/invalid keys (skipped)',
    'length_mismatch': 'len(labels) != len(bboxes) (image skipped)',
    'unknown_class': 'class name not in the 100 classes (fatal)',
    'image_size_mismatch': 'image_size differs from the JPEG (JPEG used)',
    'bad_box': 'box is not 4 finite numbers (box dropped)',
    'clipped_box': 'box outside the image (clipped to it)',
    'degenerate_box': 'zero/negative area after clipping (box dropped)',
    'exif_orientation': 'EXIF orientation tag ignored: boxes and training '
                        'use the stored pixels',
    'exif_rotated_labels': 'image_size matches the EXIF-rotated view, not '
                           'the stored pixels (image skipped)',
}


# Splits that are evaluated: every image found must reach the json (the
# score is over the whole split), so a dropped one fails the conversion
# unless allow_dropped (--allow-dropped).
EVAL_SPLIT_PREFIXES = ('val', 'test')


def is_eval_split(split: str) -> bool:
    """Whether ``split`` (e.g. ``'validation'``) is an evaluation split."""
    return osp.basename(osp.normpath(split)).lower().startswith(
        EVAL_SPLIT_PREFIXES)


class AnnotationConversionError(RuntimeError):
    """The labels cannot be converted (missing or empty split, unknown
    class, an evaluation split losing images, or --strict)."""


class Report:
    """Counts and messages of the problems found in a split."""

    def __init__(self, split_dir: str):
        self.split_dir = split_dir
        self.counts: Counter = Counter()
        self.messages: Dict[str, List[str]] = {k: [] for k in PROBLEM_KINDS}
        self.num_images = 0  # kept (written to the json)
        self.num_found = 0  # numbered images and label files found
        self.num_annotations = 0

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        self.messages[kind].append(message)

    @property
    def num_problems(self) -> int:
        return sum(self.counts.values())

    @property
    def num_dropped(self) -> int:
        """Images (or label files) found but not in the json."""
        return (self.num_found - self.num_images +
                self.counts['bad_filename'])

    @property
    def fatal(self) -> bool:
        return any(self.counts[k] for k in FATAL_KINDS)

    def summary(self, max_messages: int = 10) -> str:
        lines = [
            f'{self.split_dir}: {self.num_images} of '
            f'{self.num_found + self.counts["bad_filename"]} images kept, '
            f'{self.num_annotations} boxes, {self.num_problems} problems'
        ]
        for kind in PROBLEM_KINDS:
            if not self.counts[kind]:
                continue
            lines.append(f'  {kind}: {self.counts[kind]}  '
                         f'({PROBLEM_HELP[kind]})')
            for msg in self.messages[kind][:max_messages]:
                lines.append(f'    {msg}')
            if self.counts[kind] > max_messages:
                lines.append(f'    ... {self.counts[kind] - max_messages} '
                             'more')
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        return dict(
            images=self.num_images,
            found=self.num_found + self.counts['bad_filename'],
            annotations=self.num_annotations,
            problems={k: v for k, v in self.counts.items() if v})


def _is_number(x) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)
            and math.isfinite(x))


def parse_label_file(label_path: Optional[str],
                     image_path: Optional[str]) -> dict:
    """Parse one image's label file and image header.

    Returns ``dict(width, height, boxes, problems)`` where ``boxes`` is a
    list of ``(class_index, [x1, y1, x2, y2])`` (clipped, non-degenerate)
    and ``problems`` a list of ``(kind, message)``. ``width`` is None when
    the image must be skipped.
    """
    out = dict(width=None, height=None, boxes=[], problems=[])
    problems = out['problems']
    if label_path is None:
        problems.append(('missing_label', f'{image_path}: no label file'))
        return out
    if image_path is None:
        problems.append(('missing_image', f'{label_path}: no image file'))
        return out
    try:
        with Image.open(image_path) as im:  # reads the header only
            width, height = im.size
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception as err:  # noqa: BLE001 (any decoder error)
        problems.append(('unreadable_image', f'{image_path}: {err}'))
        return out
    if not _decodes(image_path):
        problems.append(('unreadable_image',
                         f'{image_path}: OpenCV cannot decode it (truncated '
                         f'or corrupt); training would stop on it'))
        return out
    try:
        with open(label_path, 'rb') as f:
            text = f.read()
    except OSError as err:
        problems.append(('malformed_yaml', f'{label_path}: {err}'))
        return out
    if not text.strip():
        problems.append(('empty_label', f'{label_path}: empty file'))
        return out
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        msg = ' '.join(str(err).split())
        problems.append(('malformed_yaml', f'{label_path}: {msg}'))
        return out
    if data is None:
        problems.append(('empty_label', f'{label_path}: no content'))
        return out
    if not isinstance(data, dict):
        problems.append(('malformed_yaml',
                         f'{label_path}: top level is '
                         f'{type(data).__name__}, not a mapping'))
        return out
    bboxes = data.get('bboxes', None)
    labels = data.get('labels', None)
    bboxes = [] if bboxes is None else bboxes
    labels = [] if labels is None else labels
    if not isinstance(bboxes, list) or not isinstance(labels, list):
        problems.append(('malformed_yaml',
                         f'{label_path}: bboxes/labels must be lists'))
        return out
    if len(bboxes) != len(labels):
        problems.append(('length_mismatch',
                         f'{label_path}: {len(labels)} labels, '
                         f'{len(bboxes)} bboxes'))
        return out
    size = data.get('image_size', None)
    if orientation not in (None, 1):
        # Training loads with 'color_ignore_orientation' (the stored pixels,
        # as PIL's size above); boxes drawn on the rotated view would be
        # silently wrong, so such a label is skipped.
        if (orientation in (5, 6, 7, 8) and width != height
                and isinstance(size, list) and size == [height, width]):
            problems.append(('exif_rotated_labels',
                             f'{label_path}: image_size {size} is the '
                             f'EXIF-rotated (orientation {orientation}) '
                             f'view of the {width}x{height} image'))
            return out
        problems.append(('exif_orientation',
                         f'{image_path}: EXIF orientation {orientation} '
                         f'ignored'))
    if (not isinstance(size, list) or len(size) != 2
            or [size[0], size[1]] != [width, height]):
        problems.append(('image_size_mismatch',
                         f'{label_path}: image_size {size} but the image is '
                         f'[{width}, {height}]'))
    out['width'], out['height'] = width, height
    for i, (box, name) in enumerate(zip(bboxes, labels)):
        name = str(name)
        if name not in CLASS_TO_INDEX:
            problems.append(('unknown_class',
                             f'{label_path}: unknown class name {name!r}'))
            continue
        if (not isinstance(box, list) or len(box) != 4
                or not all(_is_number(v) for v in box)):
            problems.append(('bad_box', f'{label_path}: box {i} {box!r}'))
            continue
        x1, y1, x2, y2 = box
        c = [min(max(x1, 0), width), min(max(y1, 0), height),
             min(max(x2, 0), width), min(max(y2, 0), height)]
        if c[2] - c[0] <= 0 or c[3] - c[1] <= 0:
            problems.append(('degenerate_box',
                             f'{label_path}: box {i} {box} ({name}) has no '
                             f'area inside the {width}x{height} image'))
            continue
        if c != box:
            problems.append(('clipped_box',
                             f'{label_path}: box {i} {box} -> {c}'))
        out['boxes'].append((CLASS_TO_INDEX[name], c))
    return out


_EXIF_ORIENTATION = 0x0112


def _decodes(image_path: str) -> bool:
    """Whether OpenCV (the training loader's decoder) can decode the file.

    A truncated JPEG has a readable header, so PIL reports its size, but
    ``cv2.imdecode`` returns None for it and ``LoadImageFromFile`` would
    stop the run on it. Decoding at 1/8 scale (JPEG DCT scaling) costs
    ~1 ms per 640x480 image.
    """
    import cv2
    import numpy as np
    try:
        buf = np.fromfile(image_path, dtype=np.uint8)
    except OSError:
        return False
    img = cv2.imdecode(
        buf, cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION)
    return img is not None and img.size > 0


def _parse_job(args):
    n, label_path, image_path = args
    return n, parse_label_file(label_path, image_path)


def _split_error(split_dir: str, what: str) -> AnnotationConversionError:
    root = osp.dirname(split_dir)
    splits = sorted(d for d in os.listdir(root)
                    if osp.isdir(osp.join(root, d))) if osp.isdir(root) else []
    return AnnotationConversionError(
        f'{split_dir}: {what}; nothing written. Expected '
        f'{split_dir}/images/{{n}}.JPEG and {split_dir}/labels/{{n}}.yml; '
        f'splits under {root}: {", ".join(splits) or "none"} (check the '
        f'root and split arguments).')


def _scan(directory: str, exts: Tuple[str, ...],
          report: Report) -> Dict[int, str]:
    """Map file number -> path for files with one of ``exts``."""
    found: Dict[int, str] = {}
    if not osp.isdir(directory):
        raise _split_error(osp.dirname(directory),
                           f'directory {osp.basename(directory)}/ not found')
    with os.scandir(directory) as it:
        for entry in it:
            stem, ext = osp.splitext(entry.name)
            if ext not in exts or not entry.is_file():
                continue
            if not stem.isdigit():
                report.add('bad_filename', entry.path)
                continue
            found[int(stem)] = entry.path
    return found


def _progress(iterable: Iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit='file',
                mininterval=0.5)


def convert_split(root: str, split: str, workers: Optional[int] = None,
                  progress: bool = False) -> Tuple[dict, Report]:
    """Convert ``{root}/{split}`` to a COCO dict.

    Args:
        root: the labeled data root (holds ``training/``, ``validation/``).
        split: sub-directory name, e.g. ``'training'``.
        workers: processes for parsing; ``None`` = up to 8 when there are
            many files, ``0``/``1`` = in this process.
        progress: show a progress bar.

    Returns:
        (coco dict, :class:`Report`). Unknown class names raise nothing here:
        check ``report.fatal`` (the tool does).

    Raises:
        AnnotationConversionError: the split, its ``images/`` or ``labels/`` directory
            does not exist, or it holds no image.
    """
    split_dir = osp.join(root, split)
    if not osp.isdir(split_dir):
        raise _split_error(split_dir, 'split directory not found')
    report = Report(split_dir)
    images = _scan(osp.join(split_dir, 'images'), IMAGE_EXTS, report)
    labels = _scan(osp.join(split_dir, 'labels'), LABEL_EXTS, report)
    if not images:
        raise _split_error(
            split_dir, f'no image ({"/".join(IMAGE_EXTS)}) named <integer>'
            f'.<ext> in images/')
    numbers = sorted(set(images) | set(labels))
    report.num_found = len(numbers)
    jobs = [(n, labels.get(n), images.get(n)) for n in numbers]
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(jobs) >= 2000 else 0
    if workers > 1:
        with get_context('fork').Pool(workers) as pool:
            results = list(
                _progress(
                    pool.imap(_parse_job, jobs, chunksize=256), len(jobs),
                    progress, split))
    else:
        results = [
            _parse_job(j) for j in _progress(jobs, len(jobs), progress, split)
        ]

    coco_images, annotations = [], []
    for n, res in results:
        for kind, msg in res['problems']:
            report.add(kind, msg)
        if res['width'] is None:
            continue
        coco_images.append(
            dict(id=n, file_name=osp.basename(images[n]),
                 width=res['width'], height=res['height']))
        for cls, (x1, y1, x2, y2) in res['boxes']:
            w, h = x2 - x1, y2 - y1
            annotations.append(
                dict(id=len(annotations) + 1, image_id=n,
                     category_id=cls + CATEGORY_ID_OFFSET,
                     bbox=[x1, y1, w, h], area=w * h, iscrowd=0))
    report.num_images = len(coco_images)
    report.num_annotations = len(annotations)
    coco = dict(
        info=dict(description=f'competition {split} split', source=split_dir),
        images=coco_images,
        annotations=annotations,
        categories=[dict(c) for c in CATEGORIES])
    return coco, report


def convert_to_file(root: str, split: str, out_file: str,
                    strict: bool = False, workers: Optional[int] = None,
                    progress: bool = False,
                    allow_dropped: bool = False) -> Report:
    """Convert a split and write the json; raise :class:`AnnotationConversionError`
    (with the summary) on a missing or empty split, unknown classes, an
    evaluation split (:func:`is_eval_split`) with a dropped image unless
    ``allow_dropped``, or on any problem if ``strict``. Nothing is written
    when it raises."""
    coco, report = convert_split(root, split, workers, progress)
    dropped = (is_eval_split(split) and report.num_dropped
               and not allow_dropped)
    if report.fatal or dropped or (strict and report.num_problems):
        if report.fatal:
            why = 'unknown class names'
        elif dropped:
            why = (f'{report.num_dropped} images of the evaluation split '
                   f'{split!r} would be left out, so AP would be computed '
                   f'on a subset; fix the files listed below, or pass '
                   f'--allow-dropped to evaluate on the rest')
        else:
            why = f'{report.num_problems} problems (--strict)'
        raise AnnotationConversionError(f'conversion failed: {why}\n{report.summary()}')
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    with open(out_file, 'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    return report
