"""Data of the in-process fault-injection tests (test_reliability_*.py),
made once per test module."""
import pytest

from projects.vicreg.demo_data import write_demo_folder


@pytest.fixture(scope='module')
def unlabeled(tmp_path_factory):
    root = tmp_path_factory.mktemp('unlabeled')
    write_demo_folder(str(root), num=8, size=40)
    return root


@pytest.fixture(scope='module')
def labeled(tmp_path_factory):
    from det_helpers import make_split

    from projects.detection.converters import convert_to_file
    root = tmp_path_factory.mktemp('labeled')
    make_split(str(root), 'training', range(1, 5), size=(64, 96), seed=3)
    convert_to_file(str(root), 'training',
                    str(root / 'annotations/training.json'), workers=0)
    return root
