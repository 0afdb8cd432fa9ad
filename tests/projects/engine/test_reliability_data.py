"""Fault injection, in process: bad and odd image files in the
unlabeled folder and the labeled set."""
import io
import json
import os.path as osp

import numpy as np
from PIL import Image
from reliability_helpers import DET, VICREG

from projects.launch import load_config


# ------------------------------------------------------------- data faults
def _jpeg(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, 'JPEG', quality=95, **kw)
    return buf.getvalue()


def _odd_files(rng):
    """name -> (bytes, loadable by the training pipeline)."""
    # 64x48 stored pixels, a bright object under the label's box
    rgb = rng.integers(0, 40, (48, 64, 3), dtype=np.uint8)
    rgb[6:40, 4:30] = (60, 200, 240)
    good = _jpeg(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    files = {
        'zero.jpg': (b'', False),
        'truncated.jpg': (good[:len(good) // 2], False),
        'text.jpg': (b'this is not an image\n' * 10, False),
        'png_named.jpg': (None, True),  # wrong extension
        'gray.png': (None, True),
        'rgba.png': (None, True),
        'sixteen.png': (None, True),
        'cmyk.jpg': (None, True),
        'exif.jpg': (_jpeg(rgb, exif=exif), True),
    }
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, 'PNG')
    files['png_named.jpg'] = (buf.getvalue(), True)
    for name, img in [
            ('gray.png', Image.fromarray(rgb[..., 0])),
            ('rgba.png', Image.fromarray(np.dstack([rgb, rgb[..., :1]]))),
            ('sixteen.png', Image.fromarray(
                rgb[..., 0].astype(np.uint16) * 257)),
    ]:
        buf = io.BytesIO()
        img.save(buf, 'PNG')
        files[name] = (buf.getvalue(), True)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert('CMYK').save(buf, 'JPEG')
    files['cmyk.jpg'] = (buf.getvalue(), True)
    return files


def test_unlabeled_folder_bad_and_odd_files(tmp_path):
    from mmengine.registry import init_default_scope

    from projects.vicreg.datasets import UnlabeledImageFolder
    init_default_scope('mmpretrain')
    files = _odd_files(np.random.default_rng(0))
    for name, (data, _) in files.items():
        (tmp_path / name).write_bytes(data)
    cfg = load_config(VICREG, work_dir=str(tmp_path / 'w'))
    ds = UnlabeledImageFolder(data_root=str(tmp_path), listing_cache=None,
                              pipeline=cfg.train_pipeline)
    names = [osp.basename(ds.get_data_info(i)['img_path'])
             for i in range(len(ds))]
    assert sorted(names) == sorted(files)
    for i, name in enumerate(names):
        out = ds.prepare_data(i)
        if files[name][1]:
            assert out is not None, name
            views = out['inputs']
            assert [tuple(v.shape) for v in views] == [(3, 64, 64)] * 2
        else:
            assert out is None, name
    assert {osp.basename(p) for p in ds.bad_files} == {
        n for n, (_, ok) in files.items() if not ok}
    assert ds.num_skipped == 3
    # __getitem__ never fails: bad indices draw another file
    for i in range(len(ds)):
        assert ds[i] is not None


def test_labeled_set_bad_and_odd_images(tmp_path):
    """Odd formats are converted and load with the boxes in place; broken
    files are skipped and reported; EXIF-rotated images keep the stored
    orientation in training (the labels' frame) and are reported."""
    from det_helpers import yaml_text
    from mmengine.registry import init_default_scope

    from projects.detection.converters import convert_split
    init_default_scope('mmdet')
    rng = np.random.default_rng(1)
    files = _odd_files(rng)
    images = tmp_path / 'training' / 'images'
    labels = tmp_path / 'training' / 'labels'
    images.mkdir(parents=True)
    labels.mkdir()
    numbers = {}
    box = [4, 6, 30, 40]  # in the stored 64x48 pixels
    for n, (name, (data, ok)) in enumerate(sorted(files.items()), 1):
        numbers[name] = n
        (images / f'{n}.JPEG').write_bytes(data)
        (labels / f'{n}.yml').write_text(yaml_text([box], ['dog'], (64, 48)))
    # EXIF-rotated with image_size of the rotated view -> skipped
    n_rot = len(files) + 1
    (images / f'{n_rot}.JPEG').write_bytes(files['exif.jpg'][0])
    (labels / f'{n_rot}.yml').write_text(yaml_text([box], ['dog'], (48, 64)))
    coco, report = convert_split(str(tmp_path), 'training', workers=0)
    c = report.counts
    assert c['unreadable_image'] == 3
    assert c['exif_orientation'] == 1 and c['exif_rotated_labels'] == 1
    summary = report.summary()
    for name in ('zero.jpg', 'truncated.jpg', 'text.jpg'):
        assert f'{numbers[name]}.JPEG' in summary
    assert 'OpenCV cannot decode' in summary  # the truncated one
    kept = {im['id']: im for im in coco['images']}
    assert set(kept) == {numbers[n] for n, (_, ok) in files.items() if ok}
    # every kept image loads with the training pipeline's loader at the
    # size in the json, and the box covers the same pixels
    cfg = load_config(DET, work_dir=str(tmp_path / 'w'))
    from mmcv.transforms import LoadImageFromFile
    load_cfg = dict(cfg.train_pipeline[0])
    load_cfg.pop('type')
    load = LoadImageFromFile(**load_cfg)
    for n, im in kept.items():
        out = load(dict(img_path=str(images / f'{n}.JPEG')))
        img = out['img'].astype(float)
        assert img.shape == (im['height'], im['width'], 3), n
        assert (im['width'], im['height']) == (64, 48)
        # the object is under the box (BGR: blue 240 is channel 0;
        # grayscale/16-bit copies carry the first channel, 60)
        inside, outside = img[8:38, 6:28].mean(), img[42:, 32:].mean()
        assert inside > outside + 30, (n, inside, outside)
        if n == numbers['exif.jpg']:
            assert img[8:38, 6:28, 0].mean() > 200
    anns = [a for a in coco['annotations']
            if a['image_id'] == numbers['exif.jpg']]
    assert [a['bbox'] for a in anns] == [[4, 6, 26, 34]]
    assert json.dumps(coco)  # serialisable
