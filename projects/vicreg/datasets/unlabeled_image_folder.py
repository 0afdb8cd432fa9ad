"""Unlabeled image folder for self-supervised pretraining.

mmpretrain's ``CustomDataset(with_label=False)`` with the project's folder
listing (:mod:`.image_listing`: cached across runs and ranks, natural
order) and bad files skipped instead of stopping the run.
"""
import logging
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.logging import print_log
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from .image_listing import IMG_EXTENSIONS, list_images


@DATASETS.register_module()
class UnlabeledImageFolder(CustomDataset):
    """Images without labels, from a folder used as-is or a file list.

    ``CustomDataset(with_label=False)`` except for the listing: its
    ``get_samples`` walks the folder again in every rank and run and sorts
    names as strings; this one is cached
    (:func:`~projects.vicreg.datasets.image_listing.list_images`) and in
    natural order (``2.PNG`` before ``10.PNG``).

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
        **kwargs: Other arguments of
            :class:`mmpretrain.datasets.CustomDataset`.
    """

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence = (),
                 ann_file: str = '',
                 data_prefix: str = '',
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 listing_cache: Optional[str] = 'auto',
                 **kwargs) -> None:
        self.listing_cache = listing_cache
        self.num_skipped = 0
        self.bad_files: set = set()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            with_label=False,
            extensions=extensions,
            pipeline=pipeline,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.img_prefix or self.data_root
        if self.ann_file:
            files = self._read_file_list(self.ann_file)
        else:
            files = self._find_samples()
        if not files:
            raise RuntimeError(
                f'No images with extensions {sorted(self.extensions)} found '
                f'in {self.ann_file or root}')
        return [dict(img_path=osp.join(root, f)) for f in files]

    def _find_samples(self) -> List[str]:
        root = self.img_prefix or self.data_root
        if not osp.isdir(root):
            raise FileNotFoundError(f'image folder {root} does not exist')
        return list_images(root, self.extensions, self.listing_cache)

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
