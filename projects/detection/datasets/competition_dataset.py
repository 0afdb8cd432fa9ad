"""The competition's labeled detection data as an mmdet dataset.

The YAML labels are converted once to COCO jsons
(``tools/dataset_converters/yaml_to_coco.py``,
:mod:`projects.detection.converters`); this
dataset reads them as mmdet's ``CocoDataset`` does. Label ``i`` (0-based,
``"cup or mug"`` = 0) is COCO category ``i + 1``; mmdet's background is
label 100.
"""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class CompetitionDataset(CocoDataset):
    """``CocoDataset`` with the competition's 100 classes.

    ``METAINFO['classes']`` is the one copy of the class list: the converter
    numbers categories from it and configs take it from here.
    """

    METAINFO = dict(
        classes=(
            'cup or mug', 'bird', 'hat with a wide brim', 'person', 'dog',
            'lizard', 'sheep', 'wine bottle', 'bowl', 'airplane',
            'domestic cat', 'car', 'porcupine', 'bear', 'tape player', 'ray',
            'laptop', 'zebra', 'computer keyboard', 'pitcher', 'artichoke',
            'tv or monitor', 'table', 'chair', 'helmet', 'traffic light',
            'red panda', 'sunglasses', 'lamp', 'bicycle', 'backpack',
            'mushroom', 'fox', 'otter', 'guitar', 'microphone', 'strawberry',
            'stove', 'violin', 'bookshelf', 'sofa', 'bell pepper', 'bagel',
            'lemon', 'orange', 'bench', 'piano', 'flower pot', 'butterfly',
            'purse', 'pomegranate', 'train', 'drum', 'hippopotamus', 'ski',
            'ladybug', 'banana', 'monkey', 'bus', 'miniskirt', 'camel',
            'cream', 'lobster', 'seal', 'horse', 'cart', 'elephant', 'snake',
            'fig', 'watercraft', 'apple', 'antelope', 'cattle', 'whale',
            'coffee maker', 'baby bed', 'frog', 'bathing cap', 'crutch',
            'koala bear', 'tie', 'dumbbell', 'tiger', 'dragonfly', 'goldfish',
            'cucumber', 'turtle', 'harp', 'jellyfish', 'swine', 'pretzel',
            'motorcycle', 'beaker', 'rabbit', 'nail', 'axe',
            'salt or pepper shaker', 'croquet ball', 'skunk', 'starfish'),
        # None: visualizers draw 100 random colours (COCO's palette has 80)
        palette=None)


CLASSES = CompetitionDataset.METAINFO['classes']
