"""UnlabeledImageFolder: listing, cache, corrupt files, the two views."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from process_helpers import ROOT

import projects.vicreg.datasets.image_listing as listing
import projects.vicreg.datasets.unlabeled_image_folder as uif

# isort: split
from projects.vicreg import UnlabeledImageFolder
from projects.vicreg.demo_data import write_demo_folder

DEMO = osp.join(ROOT, 'configs/vicreg/vicreg_resnet18-proj512_1xb32-coslr-10e_demo.py')  # noqa: E501


def _png(path, size=16):
    os.makedirs(osp.dirname(path), exist_ok=True)
    arr = (np.random.default_rng(0).random((size, size, 3)) * 255)
    Image.fromarray(arr.astype(np.uint8)).save(path, format='PNG')


def _names(ds):
    return [osp.relpath(ds.get_data_info(i)['img_path'], ds.data_root)
            for i in range(len(ds))]


def test_flat_folder_numeric_order_any_case(tmp_path):
    for name in ['10.PNG', '2.PNG', '1.png', 'a.JpG', 'notes.txt']:
        _png(str(tmp_path / name)) if name != 'notes.txt' else \
            (tmp_path / name).write_text('x')
    ds = UnlabeledImageFolder(data_root=str(tmp_path), listing_cache=None)
    assert _names(ds) == ['a.JpG', '1.png', '2.PNG', '10.PNG']


def test_nested_folders_and_file_list(tmp_path):
    for name in ['n01/x.jpeg', 'n01/deep/y.png', 'n02/z.PNG',
                 '.hidden/skip.png']:
        _png(str(tmp_path / name))
    ds = UnlabeledImageFolder(data_root=str(tmp_path), listing_cache=None)
    assert sorted(_names(ds)) == ['n01/deep/y.png', 'n01/x.jpeg',
                                  'n02/z.PNG']
    (tmp_path / 'list.txt').write_text(
        '# comment\nn02/z.PNG 3\n\nn01/x.jpeg\n')
    ds = UnlabeledImageFolder(data_root=str(tmp_path), ann_file='list.txt')
    assert _names(ds) == ['n02/z.PNG', 'n01/x.jpeg']


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match='No images'):
        UnlabeledImageFolder(data_root=str(tmp_path), listing_cache=None)


def test_listing_cache_used_and_invalidated(tmp_path, monkeypatch):
    data, cache = tmp_path / 'data', str(tmp_path / 'cache')
    for i in range(3):
        _png(str(data / f'{i}.PNG'))
    first = UnlabeledImageFolder(data_root=str(data), listing_cache=cache)
    assert len(os.listdir(cache)) == 1

    real_scan = listing.scan_images
    calls = []
    monkeypatch.setattr(listing, 'scan_images',
                        lambda *a: calls.append(a) or real_scan(*a))
    again = UnlabeledImageFolder(data_root=str(data), listing_cache=cache)
    assert _names(again) == _names(first) and not calls  # served by cache

    _png(str(data / '3.PNG'))  # changes the folder's mtime
    os.utime(data, ns=(0, os.stat(data).st_mtime_ns + 1))
    grown = UnlabeledImageFolder(data_root=str(data), listing_cache=cache)
    assert len(calls) == 1 and _names(grown)[-1] == '3.PNG'


def _demo_dataset(data_root):
    cfg = Config.fromfile(DEMO)
    init_default_scope('mmpretrain')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.pop('type')
    ds_cfg.update(data_root=str(data_root), listing_cache=None)
    return UnlabeledImageFolder(**ds_cfg)


def test_two_views_differ_with_right_shape(tmp_path):
    write_demo_folder(str(tmp_path), num=2, size=48)
    ds = _demo_dataset(tmp_path)
    np.random.seed(0)
    item = ds[0]
    views = item['inputs']
    assert isinstance(views, list) and len(views) == 2
    for v in views:
        assert v.shape == (3, 64, 64) and v.dtype == torch.uint8
    assert not torch.equal(views[0], views[1])


def test_corrupt_files_are_skipped_and_counted(tmp_path, monkeypatch):
    write_demo_folder(str(tmp_path), num=2, size=32)
    good = (tmp_path / '0.PNG').read_bytes()
    (tmp_path / 'zero.png').write_bytes(b'')
    (tmp_path / 'trunc.png').write_bytes(good[:len(good) // 2])
    (tmp_path / 'text.png').write_text('this is not an image')
    messages = []
    monkeypatch.setattr(uif, 'print_log',
                        lambda msg, **kw: messages.append(msg))
    ds = _demo_dataset(tmp_path)
    names = _names(ds)
    for bad in ('zero.png', 'trunc.png', 'text.png'):
        item = ds[names.index(bad)]  # replaced by another, good, image
        assert item['inputs'][0].shape == (3, 64, 64)
    # A replacement index may itself be bad: >= one skip per bad file.
    assert len(ds.bad_files) == 3 and ds.num_skipped >= 3
    assert len(messages) == 3 and all('Skipping' in m for m in messages)
    skipped = ds.num_skipped
    ds[names.index('zero.png')]  # counted again, warned once per file
    assert ds.num_skipped > skipped and len(messages) == 3
