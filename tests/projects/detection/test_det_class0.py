"""Class index 0 ("cup or mug") is an ordinary, trainable and detectable
class (the seed's torchvision mapping made it background)."""
import pytest
import torch
from det_helpers import DEMO_CONFIG, write_item
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from projects.detection.converters import convert_to_file
from projects.detection.datasets import CLASSES


@pytest.fixture(scope='module')
def detector():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def test_dataset_gives_label_0(tmp_path):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    root = str(tmp_path)
    write_item(root, 'training', 1, 160, 120,
               [[10, 10, 90, 80], [50, 40, 150, 110]], ['cup or mug', 'dog'])
    convert_to_file(root, 'training', f'{root}/annotations/training.json',
                    strict=True, workers=0)
    cfg = Config.fromfile(DEMO_CONFIG)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = root
    ds = DATASETS.build(ds_cfg)
    assert ds.metainfo['classes'] == CLASSES
    info = ds.get_data_info(0)
    assert [i['bbox_label'] for i in info['instances']] == [0, 4]
    sample = ds[0]['data_samples']
    assert sample.gt_instances.labels.tolist() == [0, 4]


def test_bbox_head_targets_label_0(detector):
    model, cfg = detector
    head = model.roi_head.bbox_head
    assert head.num_classes == 100
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 90., 80.]]),
                      labels=torch.tensor([0]))
    proposals = torch.tensor([[12., 11., 88., 82.], [100., 100., 120., 120.],
                              [0., 0., 30., 30.]])
    pred = InstanceData(priors=proposals)
    assign = model.roi_head.bbox_assigner.assign(pred, gt)
    sampling = model.roi_head.bbox_sampler.sample(assign, pred, gt)
    labels, label_weights, _, _ = head.get_targets(
        [sampling], model.train_cfg.rcnn, concat=True)
    pos = len(sampling.pos_inds)
    assert pos >= 2  # the overlapping proposal and the GT box itself
    assert labels[:pos].tolist() == [0] * pos  # class 0 is a positive
    assert set(labels[pos:].tolist()) == {100}  # background = num_classes
    assert (label_weights > 0).all()
    # the classification loss really trains class 0
    cls_score = torch.zeros(len(labels), 101, requires_grad=True)
    loss = head.loss_cls(cls_score, labels, label_weights)
    loss.backward()
    assert cls_score.grad[:pos, 0].lt(0).all()  # pushes class 0 up


def test_class_0_survives_postprocessing(detector):
    model, cfg = detector
    head = model.roi_head.bbox_head
    rois = torch.tensor([[0., 10., 10., 90., 80.], [0., 50., 40., 150., 110.]])
    cls_score = torch.full((2, 101), -5.)
    cls_score[0, 0] = 8.   # roi 0: class 0
    cls_score[1, 4] = 8.   # roi 1: class 4
    bbox_pred = torch.zeros(2, 4 * 100)
    meta = dict(img_shape=(120, 160), ori_shape=(120, 160),
                scale_factor=(1., 1.))
    result = head.predict_by_feat(
        rois=(rois, ), cls_scores=(cls_score, ), bbox_preds=(bbox_pred, ),
        batch_img_metas=[meta], rcnn_test_cfg=model.test_cfg.rcnn,
        rescale=True)[0]
    assert 0 in result.labels.tolist() and 4 in result.labels.tolist()
    i = result.labels.tolist().index(0)
    assert result.scores[i] > 0.9
    assert result.bboxes[i].tolist() == pytest.approx([10, 10, 90, 80],
                                                      abs=1e-3)
