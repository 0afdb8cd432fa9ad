#!/usr/bin/env python
"""Convert a competition split (images/{n}.JPEG + labels/{n}.yml) to COCO.

    python tools/dataset_converters/yaml_to_coco.py data/labeled training \
        data/labeled/annotations/training.json [--strict]

Image id = n, category id = class index + 1, area = box width x height.
Problems are counted and summarised ("N of M images kept"). Always fail
(exit 1, nothing written): a missing split / images / labels directory, a
split without images, unknown class names, and an evaluation split
(``val*``, ``test*``) that would lose an image unless ``--allow-dropped``.
``--strict`` fails on any problem.
"""
import argparse
import os.path as osp
import sys
import time

from projects.detection.converters import (AnnotationConversionError,
                                           convert_to_file)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='labeled data root (holds the splits)')
    parser.add_argument('split', help='split directory, e.g. training')
    parser.add_argument('out', help='output COCO json file')
    parser.add_argument('--strict', action='store_true',
                        help='fail (exit 1) on any problem')
    parser.add_argument('--allow-dropped', action='store_true',
                        help='write the json of an evaluation split even '
                        'if some of its images are left out (AP is then '
                        'over the rest)')
    parser.add_argument('--workers', type=int, default=None,
                        help='parsing processes (default: auto)')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    try:
        report = convert_to_file(args.root, args.split, args.out,
                                 strict=args.strict, workers=args.workers,
                                 progress=not args.no_progress,
                                 allow_dropped=args.allow_dropped)
    except AnnotationConversionError as err:
        print(err, file=sys.stderr)
        return 1
    print(report.summary())
    print(f'wrote {args.out} in {time.time() - start:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
