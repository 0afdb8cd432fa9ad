"""YAML -> COCO conversion of the competition layout."""
import glob
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
from det_helpers import make_split, write_item
from process_helpers import ROOT

from projects.detection.converters import (AnnotationConversionError,
                                           convert_split, convert_to_file)
from projects.detection.datasets import CLASSES

TOOL = osp.join(ROOT, 'tools', 'dataset_converters', 'yaml_to_coco.py')


def run_tool(*args):
    """The CLI in a subprocess (exit code, stdout, stderr)."""
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def _load_tool():
    spec = importlib.util.spec_from_file_location('yaml_to_coco', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Result:

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def tool(capsys):
    """The CLI's main() in this process (fast); same result object."""
    main = _load_tool().main

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return _Result(code, out.out, out.err)

    return run


def test_good_split(tmp_path):
    items = make_split(str(tmp_path), 'training', [3, 1, 12],
                       classes=['cup or mug', 'starfish', 'person'])
    coco, report = convert_split(str(tmp_path), 'training', workers=0)
    assert report.num_problems == 0 and not report.fatal
    assert [im['id'] for im in coco['images']] == [1, 3, 12]
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    assert [c['id'] for c in coco['categories']] == list(range(1, 101))
    anns = coco['annotations']
    assert len(anns) == sum(len(i['bboxes']) for i in items.values())
    assert len({a['id'] for a in anns}) == len(anns)
    for im in coco['images']:
        item = items[im['id']]
        assert (im['width'], im['height']) == item['size']
        assert im['file_name'] == f'{im["id"]}.JPEG'
        mine = [a for a in anns if a['image_id'] == im['id']]
        for a, box, name in zip(mine, item['bboxes'], item['labels']):
            x1, y1, x2, y2 = box
            assert a['bbox'] == [x1, y1, x2 - x1, y2 - y1]
            assert a['area'] == (x2 - x1) * (y2 - y1)
            assert a['iscrowd'] == 0
            assert CLASSES[a['category_id'] - 1] == name
    # the process pool gives the same result
    coco2, _ = convert_split(str(tmp_path), 'training', workers=2)
    assert coco2 == coco


def test_cli_good(tmp_path):
    make_split(str(tmp_path), 'validation', [30001, 30002])
    out = tmp_path / 'annotations' / 'validation.json'
    res = run_tool(tmp_path, 'validation', out, '--strict', '--no-progress')
    assert res.returncode == 0, res.stderr
    coco = json.loads(out.read_text())
    assert [im['id'] for im in coco['images']] == [30001, 30002]


def make_bad_split(root):
    split = 'training'
    write_item(root, split, 1, 100, 80, [[10, 10, 50, 40]], ['cup or mug'])
    # outside the image -> clipped (2 boxes)
    write_item(root, split, 2, 100, 80, [[-5, 10, 50, 300], [90, 70, 120, 90]],
               ['dog', 'cart'])
    # zero and negative area -> dropped (2), one good box kept
    write_item(root, split, 3, 100, 80,
               [[10, 10, 10, 40], [50, 50, 40, 60], [1, 1, 20, 20]],
               ['dog', 'dog', 'bird'])
    # entirely outside -> degenerate after clipping
    write_item(root, split, 4, 100, 80, [[120, 10, 150, 40]], ['dog'])
    # image_size disagrees with the JPEG -> JPEG size used
    write_item(root, split, 5, 120, 90, [[0, 0, 110, 85]], ['dog'],
               image_size=[500, 313])
    write_item(root, split, 6, 100, 80, [[1, 1, 9, 9]], ['dog'],
               label=False)  # no label file
    write_item(root, split, 7, 100, 80, [[1, 1, 9, 9]], ['dog'],
               image=False)  # no image
    write_item(root, split, 8, 100, 80, [], [], label_text='')  # empty
    write_item(root, split, 9, 100, 80, [], [],
               label_text='bboxes: [[1, 2, 3\nlabels: [dog\n')  # bad YAML
    write_item(root, split, 10, 100, 80, [[1, 1, 9, 9], [2, 2, 8, 8]],
               ['dog'])  # length mismatch
    write_item(root, split, 11, 100, 80, [[1, 2, 3], ['a', 1, 2, 3],
                                          [5, 5, 30, 30]],
               ['dog', 'dog', 'dog'])  # 2 bad boxes
    write_item(root, split, 12, 100, 80, [], [],
               label_text='- just\n- a list\n')  # not a mapping
    return split


def test_problems_counted_and_repaired(tmp_path, tool):
    split = make_bad_split(str(tmp_path))
    coco, report = convert_split(str(tmp_path), split, workers=0)
    c = report.counts
    assert c['clipped_box'] == 2
    assert c['degenerate_box'] == 3
    assert c['image_size_mismatch'] == 1
    assert c['missing_label'] == 1 and c['missing_image'] == 1
    assert c['empty_label'] == 1
    assert c['malformed_yaml'] == 2
    assert c['length_mismatch'] == 1
    assert c['bad_box'] == 2
    assert not report.fatal
    assert [im['id'] for im in coco['images']] == [1, 2, 3, 4, 5, 11]
    by_img = {}
    for a in coco['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    assert [a['bbox'] for a in by_img[2]] == [[0, 10, 50, 70],
                                              [90, 70, 10, 10]]
    assert [a['area'] for a in by_img[2]] == [3500, 100]
    assert [a['bbox'] for a in by_img[3]] == [[1, 1, 19, 19]]
    assert 4 not in by_img  # its only box was outside the image
    im5 = next(im for im in coco['images'] if im['id'] == 5)
    assert (im5['width'], im5['height']) == (120, 90)
    summary = report.summary()
    for kind in ('clipped_box', 'degenerate_box', 'missing_label',
                 'missing_image', 'empty_label', 'malformed_yaml',
                 'length_mismatch', 'image_size_mismatch', 'bad_box'):
        assert kind in summary
    assert osp.join('labels', '10.yml') in summary  # names the file

    out = tmp_path / 'out.json'
    res = tool(tmp_path, split, out, '--no-progress')
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())['images'] == coco['images']
    assert 'clipped_box: 2' in res.stdout

    out2 = tmp_path / 'strict.json'
    res = tool(tmp_path, split, out2, '--strict', '--no-progress')
    assert res.returncode == 1
    assert '--strict' in res.stderr and 'degenerate_box: 3' in res.stderr
    assert not out2.exists()


@pytest.mark.parametrize('strict', [False, True])
def test_unknown_class_is_an_error(tmp_path, strict, tool):
    write_item(str(tmp_path), 'training', 1, 100, 80, [[1, 1, 50, 50]],
               ['dog'])
    write_item(str(tmp_path), 'training', 2, 100, 80,
               [[1, 1, 50, 50], [2, 2, 40, 40]], ['cup', 'dog'])
    out = tmp_path / 'a.json'
    with pytest.raises(AnnotationConversionError) as err:
        convert_to_file(str(tmp_path), 'training', str(out), strict=strict,
                        workers=0)
    assert "unknown class name 'cup'" in str(err.value)
    assert osp.join('labels', '2.yml') in str(err.value)
    assert not out.exists()
    res = tool(tmp_path, 'training', out, '--no-progress')
    assert res.returncode == 1 and "'cup'" in res.stderr


def test_strict_fails_on_single_clip(tmp_path, tool):
    write_item(str(tmp_path), 'validation', 30001, 100, 80,
               [[1, 1, 101, 50]], ['dog'])
    out = tmp_path / 'v.json'
    assert tool(tmp_path, 'validation', out, '--no-progress').returncode == 0
    res = run_tool(tmp_path, 'validation', tmp_path / 'w.json', '--strict',
                   '--no-progress')
    assert res.returncode == 1 and 'clipped_box: 1' in res.stderr


def test_dataset_configs_use_the_class_list():
    """The converter's categories and every detection config's datasets
    take the one class list, CompetitionDataset.METAINFO; only the demo's
    detector narrows it, to the generator's 6 classes, with a head to
    match."""
    import importlib.util

    from mmengine.config import Config

    from projects.detection import CompetitionDataset
    assert CLASSES is CompetitionDataset.METAINFO['classes']
    assert len(CLASSES) == 100 and len(set(CLASSES)) == 100
    spec = importlib.util.spec_from_file_location(
        'generate_demo_data', osp.join(ROOT, 'tools', 'generate_demo_data.py'))
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    narrowed = []
    for path in glob.glob(osp.join(ROOT, 'configs', 'faster_rcnn', '*.py')):
        cfg = Config.fromfile(path)
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            assert cfg[loader].dataset.type == 'CompetitionDataset', path
            classes = cfg[loader].dataset.get('metainfo', {}).get(
                'classes', CLASSES)
            if classes is not CLASSES:
                assert tuple(classes) == generator.DEMO_CLASS_NAMES, path
                narrowed.append(osp.basename(path))
        assert cfg.model.roi_head.bbox_head.num_classes == len(classes)
        assert cfg.default_scope == 'mmdet'
        assert cfg.custom_imports.imports == ['projects.compat',
                                              'projects.detection',
                                              'projects.engine']
    assert set(narrowed) == {'faster-rcnn_r18-pre_fpn_1xb4-3e_demo-6cls.py'}


def make_dropping_validation(root):
    """The new user's case: 5 validation images, one malformed YAML and two
    without labels."""
    split = 'validation'
    for n in (30001, 30002):
        write_item(root, split, n, 100, 80, [[1, 1, 50, 50]], ['dog'])
    write_item(root, split, 30003, 100, 80, [], [],
               label_text='bboxes: [[1, 2, 3\nlabels: [dog\n')
    for n in (30004, 30005):
        write_item(root, split, n, 100, 80, [[1, 1, 9, 9]], ['dog'],
                   label=False)
    return split


def test_validation_split_with_dropped_images_fails(tmp_path, tool):
    split = make_dropping_validation(str(tmp_path))
    out = tmp_path / 'v.json'
    res = tool(tmp_path, split, out, '--no-progress')
    assert res.returncode == 1
    assert '2 of 5 images kept' in res.stderr
    assert '--allow-dropped' in res.stderr and '3 images' in res.stderr
    assert osp.join('labels', '30003.yml') in res.stderr  # names the file
    assert not out.exists()
    # the explicit flag writes the rest, and says how many were kept
    res = tool(tmp_path, split, out, '--no-progress', '--allow-dropped')
    assert res.returncode == 0, res.stderr
    assert '2 of 5 images kept' in res.stdout
    assert len(json.loads(out.read_text())['images']) == 2


def test_training_split_with_dropped_images_is_summarised(tmp_path, tool):
    # negative control: a training split may drop images (with a count)
    import shutil
    make_dropping_validation(str(tmp_path))
    shutil.move(str(tmp_path / 'validation'), str(tmp_path / 'training'))
    out = tmp_path / 't.json'
    res = tool(tmp_path, 'training', out, '--no-progress')
    assert res.returncode == 0, res.stderr
    assert '2 of 5 images kept' in res.stdout
    assert len(json.loads(out.read_text())['images']) == 2


@pytest.mark.parametrize('split', ['training', 'validaton'])
def test_missing_split_is_an_error(tmp_path, tool, split):
    write_item(str(tmp_path), 'validation', 30001, 100, 80, [[1, 1, 5, 5]],
               ['dog'])
    out = tmp_path / 'x.json'
    res = tool(tmp_path, split, out, '--no-progress')
    assert res.returncode == 1
    assert f'{split}: split directory not found' in res.stderr
    assert 'validation' in res.stderr  # lists the splits that exist
    assert not out.exists()
    with pytest.raises(AnnotationConversionError):
        convert_split(str(tmp_path), split, workers=0)


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_split_without_images_is_an_error(tmp_path, tool, split):
    (tmp_path / split / 'images').mkdir(parents=True)
    (tmp_path / split / 'labels').mkdir()
    (tmp_path / split / 'labels' / '1.yml').write_text('bboxes: []\n')
    out = tmp_path / 'x.json'
    res = tool(tmp_path, split, out, '--no-progress')
    assert res.returncode == 1 and 'no image' in res.stderr
    assert not out.exists()
    (tmp_path / split / 'images').rmdir()
    res = tool(tmp_path, split, out, '--no-progress')
    assert res.returncode == 1 and 'images/ not found' in res.stderr
    assert not out.exists()
