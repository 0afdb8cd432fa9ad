"""tools/generate_demo_data.py: layout, determinism, valid labels."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import yaml
from PIL import Image
from process_helpers import ROOT

SCRIPT = osp.join(ROOT, 'tools', 'generate_demo_data.py')
spec = importlib.util.spec_from_file_location('generate_demo_data', SCRIPT)
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)

SMALL = ['--num-unlabeled', '12', '--num-train', '10', '--num-val', '5',
         '--quiet']


def _make(out, *extra):
    assert gen.main(['--out', str(out)] + SMALL + list(extra)) == 0
    return out


def _digest(root):
    """sha256 of every file (path + bytes) under root, manifest excluded."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name == gen.MANIFEST:
                continue
            p = osp.join(dirpath, name)
            h.update(osp.relpath(p, root).encode())
            with open(p, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob('*') if p.is_file()}


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    return _make(tmp_path_factory.mktemp('demo') / 'demo')


def test_class_list():
    assert len(gen.CLASSES) == 100
    assert gen.CLASSES[:5] == ('cup or mug', 'bird', 'hat with a wide brim',
                               'person', 'dog')
    assert gen.CLASSES[-1] == 'starfish'
    assert 'cup or mug' in gen.DEMO_CLASS_NAMES  # index 0 is exercised
    assert 4 <= len(gen.DEMO_CLASS_NAMES) <= 6
    assert set(gen.DEMO_CLASS_NAMES) <= set(gen.CLASSES)
    # classes differ in shape and in texture, not only colour
    assert len({c[1] for c in gen.DEMO_CLASSES}) == len(gen.DEMO_CLASSES)
    assert len({c[2] for c in gen.DEMO_CLASSES}) >= 4


def test_layout(demo):
    assert sorted(os.listdir(demo / 'unlabeled')) == sorted(
        f'{i}.PNG' for i in range(12))
    tr = demo / 'labeled' / 'training'
    va = demo / 'labeled' / 'validation'
    assert sorted(os.listdir(tr / 'images')) == sorted(
        f'{n}.JPEG' for n in range(1, 11))
    assert sorted(os.listdir(tr / 'labels')) == sorted(
        f'{n}.yml' for n in range(1, 11))
    # validation numbering continues after training (competition: 30001..)
    assert sorted(os.listdir(va / 'images')) == sorted(
        f'{n}.JPEG' for n in range(11, 16))
    assert sorted(os.listdir(va / 'labels')) == sorted(
        f'{n}.yml' for n in range(11, 16))
    man = json.loads((demo / 'manifest.json').read_text())
    assert man['splits'] == {'unlabeled': [0, 11], 'training': [1, 10],
                             'validation': [11, 15]}
    for i in range(12):
        with Image.open(demo / 'unlabeled' / f'{i}.PNG') as im:
            assert im.format == 'PNG' and im.mode == 'RGB'
            assert im.size == (96, 96)


def test_labels_valid(demo):
    seen = set()
    for split in ('training', 'validation'):
        d = demo / 'labeled' / split
        for name in os.listdir(d / 'labels'):
            n = name[:-4]
            text = (d / 'labels' / name).read_text()
            lab = yaml.safe_load(text)
            assert list(lab) == ['bboxes', 'image_size', 'labels']
            # competition style: flow lists, one box per line
            assert text.startswith('bboxes:\n- [')
            assert '\nimage_size: [' in text and '\nlabels: [' in text
            w, h = lab['image_size']
            with Image.open(d / 'images' / f'{n}.JPEG') as im:
                assert im.format == 'JPEG' and im.mode == 'RGB'
                assert im.size == (w, h)
            assert 160 <= w <= 256 and 160 <= h <= 256
            assert 1 <= len(lab['bboxes']) == len(lab['labels']) <= 4
            for box, cls in zip(lab['bboxes'], lab['labels']):
                assert all(type(v) is int for v in box)
                x1, y1, x2, y2 = box
                assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (name, box)
                assert x2 - x1 >= 8 and y2 - y1 >= 8
                assert cls in gen.CLASSES and cls in gen.DEMO_CLASS_NAMES
                seen.add(cls)
    assert len(seen) >= 3


def test_deterministic(tmp_path, demo):
    a = _make(tmp_path / 'a')
    assert _digest(a) == _digest(demo)
    b = _make(tmp_path / 'b', '--seed', '1')
    assert _digest(b) != _digest(demo)
    # each image depends only on (seed, split, index): a larger set starts
    # with the same files
    c = _make(tmp_path / 'c', '--num-train', '12')
    for n in range(1, 11):
        p = osp.join('labeled', 'training', 'images', f'{n}.JPEG')
        assert (c / p).read_bytes() == (demo / p).read_bytes()


def test_idempotent_and_regenerates(tmp_path, capsys):
    out = _make(tmp_path / 'd')
    stamps = _mtimes(out)
    capsys.readouterr()
    _make(out)
    assert 'nothing to do' in capsys.readouterr().out
    assert _mtimes(out) == stamps  # no file rewritten
    # other parameters: regenerated, old files gone
    _make(out, '--num-val', '2')
    assert sorted(os.listdir(out / 'labeled' / 'validation' / 'images')) == [
        '11.JPEG', '12.JPEG']
    # missing files, or a run cut short (manifest not complete): regenerated
    (out / 'unlabeled' / '3.PNG').unlink()
    _make(out, '--num-val', '2')
    assert (out / 'unlabeled' / '3.PNG').exists()
    man = json.loads((out / 'manifest.json').read_text())
    assert man['complete'] is True
    man['complete'] = False
    (out / 'manifest.json').write_text(json.dumps(man))
    capsys.readouterr()
    _make(out, '--num-val', '2')
    assert 'nothing to do' not in capsys.readouterr().out
    assert json.loads((out / 'manifest.json').read_text())['complete']


def test_refuses_foreign_data(tmp_path):
    out = tmp_path / 'foreign'
    (out / 'labeled').mkdir(parents=True)
    (out / 'labeled' / 'keep.txt').write_text('x')
    with pytest.raises(SystemExit, match='refusing to overwrite'):
        gen.main(['--out', str(out)] + SMALL)
    assert (out / 'labeled' / 'keep.txt').exists()


@pytest.mark.slow
def test_default_size_cli(tmp_path):
    """The CLI generates the default sizes (2000/300/100) with every demo
    class used; its speed is a docs/performance.md figure, not a test."""
    res = subprocess.run([sys.executable, SCRIPT, '--out',
                          str(tmp_path / 'demo'), '--quiet'],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    man = json.loads((tmp_path / 'demo' / 'manifest.json').read_text())
    assert (man['num_unlabeled'], man['num_train'], man['num_val']) == (
        2000, 300, 100)
    labels = set()
    for f in (tmp_path / 'demo' / 'labeled' / 'training' / 'labels').iterdir():
        labels.update(yaml.safe_load(f.read_text())['labels'])
    assert labels == set(gen.DEMO_CLASS_NAMES)
