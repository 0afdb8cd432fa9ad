"""Unlabeled image folder for self-supervised pretraining.

Listing and naturally sorting 512,000 files takes seconds (far more on
network file systems) and is paid once per rank, so the sorted listing is
cached in a text file keyed on the folder (absolute path, extensions, and
the mtime of every directory, so adding, removing or renaming files
invalidates it). Costs: docs/performance.md.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

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


class _ListingCache:
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


@DATASETS.register_module()
class UnlabeledImageFolder(BaseDataset):
    """Images without labels, from a folder used as-is or a file list.

    Works with a flat folder (e.g. ``{idx}.PNG``), nested folders (e.g. an
    ImageNet ``train/`` tree, class folders ignored) or ``ann_file``: one
    path per line, relative to ``data_root`` (an mmpretrain-style trailing
    integer label is ignored). Extensions match in any case.

    A file that cannot be loaded or transformed (zero-byte, truncated, not an
    image, ...) is skipped: a warning names it (once per file and process)
    and running counts are kept in :attr:`num_skipped` (skips) and
    :attr:`bad_files` (distinct files); mmengine then draws
    another index, so training never stops on bad data.

    Args:
        data_root (str): The folder of images.
        pipeline (Sequence): Processing pipeline.
        ann_file (str): Optional file list. Defaults to '' (scan the folder).
        data_prefix (str | dict): Sub-folder of ``data_root`` holding the
            images. Defaults to ''.
        extensions (Sequence[str]): Accepted extensions.
        listing_cache (str, optional): Folder for the listing cache;
            ``'auto'`` uses ``$VICREG_CACHE_DIR`` or
            ``~/.cache/vicreg/listings``; None disables it.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`.
    """

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence = (),
                 ann_file: str = '',
                 data_prefix: str = '',
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 listing_cache: Optional[str] = 'auto',
                 **kwargs) -> None:
        self.extensions = tuple(extensions)
        self.listing_cache = listing_cache
        self.num_skipped = 0
        self.bad_files: set = set()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img_path') or self.data_root
        if self.ann_file:
            files = self._read_file_list(self.ann_file)
        else:
            files = self._list_folder(root)
        if not files:
            raise RuntimeError(
                f'No images with extensions {self.extensions} found in '
                f'{self.ann_file or root}')
        return [dict(img_path=osp.join(root, f)) for f in files]

    @staticmethod
    def _read_file_list(ann_file: str) -> List[str]:
        files = []
        with open(ann_file) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                parts = line.rsplit(' ', 1)
                files.append(parts[0] if len(parts) == 2
                             and parts[1].lstrip('-').isdigit() else line)
        return files

    def _list_folder(self, root: str) -> List[str]:
        if not osp.isdir(root):
            raise FileNotFoundError(f'image folder {root} does not exist')
        cache = None
        if self.listing_cache is not None:
            cache_dir = default_cache_dir() \
                if self.listing_cache == 'auto' else self.listing_cache
            cache = _ListingCache(root, self.extensions, cache_dir)
            files = cache.load()
            if files is not None:
                return files
        files, dirs = scan_images(root, self.extensions)
        if cache is not None:
            cache.save(files, dirs)
        return files

    def prepare_data(self, idx: int):
        """Run the pipeline; a failure marks the file bad and returns None
        so that ``__getitem__`` draws another index."""
        try:
            data = super().prepare_data(idx)
        except Exception as err:  # any decode/transform error: skip file
            reason = f'{type(err).__name__}: {err}'
            data = None
        else:
            reason = 'the pipeline returned None'
        if data is None:
            self._skip(idx, reason)
        return data

    def _skip(self, idx: int, reason: str) -> None:
        self.num_skipped += 1
        path = self.get_data_info(idx)['img_path']
        if path in self.bad_files:
            return
        self.bad_files.add(path)
        print_log(
            f'Skipping unreadable image {path} ({reason}); '
            f'{self.num_skipped} skipped so far in this process, '
            f'{len(self.bad_files)} distinct bad files.',
            logger='current',
            level=logging.WARNING)
