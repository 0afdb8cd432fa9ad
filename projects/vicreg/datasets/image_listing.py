"""Listing of an image folder, cached across runs and ranks.

Listing and naturally sorting 512,000 files takes seconds (far more on
network file systems) and is paid once per rank, so the sorted listing is
cached in a text file keyed on the folder (absolute path, extensions, and
the mtime of every directory, so adding, removing or renaming files
invalidates it). Costs: docs/performance.md.

Shared by the folder datasets of both stages: VICReg's
:class:`~projects.vicreg.datasets.UnlabeledImageFolder` and the detector's
:class:`~projects.detection.datasets.UnlabeledDetDataset`.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
CACHE_ENV_VAR = 'VICREG_CACHE_DIR'
_CACHE_VERSION = 1


def default_cache_dir() -> str:
    return os.environ.get(CACHE_ENV_VAR) or osp.join(
        osp.expanduser('~'), '.cache', 'vicreg', 'listings')


def scan_images(root: str, extensions: Sequence[str]
                ) -> Tuple[List[str], Dict[str, int]]:
    """Recursively list image files under ``root`` (extension match is
    case-insensitive; hidden entries skipped).

    Returns:
        The relative paths, sorted (numeric names by value, e.g. ``2.PNG``
        before ``10.PNG``), and ``{relative dir: mtime_ns}`` of every
        directory visited (the cache key).
    """
    exts = tuple(e.lower() for e in extensions)
    files: List[str] = []
    dirs: Dict[str, int] = {}
    stack = ['']
    while stack:
        rel = stack.pop()
        path = osp.join(root, rel) if rel else root
        dirs[rel] = os.stat(path).st_mtime_ns
        with os.scandir(path) as it:
            for entry in it:
                if entry.name.startswith('.'):
                    continue
                rel_name = osp.join(rel, entry.name) if rel else entry.name
                if entry.is_dir():
                    stack.append(rel_name)
                elif entry.name.lower().endswith(exts):
                    files.append(rel_name)
    files.sort(key=_sort_key)
    return files, dirs


def _sort_key(path: str) -> Tuple[str, int, str]:
    # Cheap natural order for `{idx}.PNG` (a regex split costs seconds on
    # 512k names, osp.split/splitext ~1 s more); others sort as strings.
    head, _, name = path.rpartition(os.sep)
    stem = name.partition('.')[0]
    return (head, int(stem) if stem.isdigit() else -1, name)


class ListingCache:
    """Listing of ``root`` stored as ``<header json>\\n<path>\\n...``."""

    def __init__(self, root: str, extensions: Sequence[str],
                 cache_dir: str) -> None:
        self.root = osp.abspath(root)
        self.extensions = sorted(e.lower() for e in extensions)
        key = hashlib.sha1(
            json.dumps([self.root, self.extensions]).encode()).hexdigest()
        self.path = osp.join(cache_dir, f'{key[:16]}.txt')

    def load(self) -> Optional[List[str]]:
        try:
            with open(self.path) as f:
                header = json.loads(f.readline())
                if header.get('version') != _CACHE_VERSION or \
                        header.get('root') != self.root:
                    return None
                for rel, mtime in header['dirs'].items():
                    path = osp.join(self.root, rel) if rel else self.root
                    if os.stat(path).st_mtime_ns != mtime:
                        return None
                files = f.read().split('\n')
        except (OSError, ValueError, KeyError):
            return None
        return files if files != [''] else []

    def save(self, files: List[str], dirs: Dict[str, int]) -> None:
        header = dict(version=_CACHE_VERSION, root=self.root, dirs=dirs)
        try:
            os.makedirs(osp.dirname(self.path), exist_ok=True)
            # Write-then-rename: ranks building the dataset concurrently
            # never read a partial file.
            fd, tmp = tempfile.mkstemp(dir=osp.dirname(self.path))
            with os.fdopen(fd, 'w') as f:
                f.write(json.dumps(header) + '\n' + '\n'.join(files))
            os.replace(tmp, self.path)
        except OSError as err:  # a read-only home must not stop training
            print_log(f'Could not write listing cache {self.path}: {err}',
                      logger='current', level=logging.WARNING)


def list_images(root: str, extensions: Sequence[str],
                listing_cache: Optional[str] = 'auto') -> List[str]:
    """The sorted image paths under ``root``, relative to it, from the
    cache in ``listing_cache`` when still valid (``'auto'``:
    ``$VICREG_CACHE_DIR`` or ``~/.cache/vicreg/listings``; None: always
    scan, write no cache)."""
    cache = None
    if listing_cache is not None:
        cache = ListingCache(
            root, extensions, default_cache_dir()
            if listing_cache == 'auto' else listing_cache)
        files = cache.load()
        if files is not None:
            return files
    files, dirs = scan_images(root, extensions)
    if cache is not None:
        cache.save(files, dirs)
    return files
