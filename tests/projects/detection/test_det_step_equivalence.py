"""The detector's speed changes leave the training step unchanged:
CachedAnchorGenerator == AnchorGenerator, BatchedRPNHead's proposals ==
RPNHead's, and a Faster R-CNN step with BatchedRPNHead +
CachedAnchorGenerator + SyncFreeMaxIoUAssigner gives mmdet's stock losses
and gradients bit for bit, over several steps (the cache is hit)."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import projects.detection  # noqa: F401

# isort: split
from det_helpers import DEMO_CONFIG
from mmdet.models.dense_heads import RPNHead
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import MODELS

from projects.detection.models.batched_rpn_head import BatchedRPNHead
from projects.detection.models.cached_anchor_generator import \
    CachedAnchorGenerator

ANCHORS = dict(scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])


def test_cached_anchor_generator_identical_and_cached():
    ours, ref = CachedAnchorGenerator(**ANCHORS, cache_entries=1), \
        AnchorGenerator(**ANCHORS)
    for pad, sizes in (((64, 96), [(16, 24), (8, 12), (4, 6), (2, 3),
                                   (1, 2)]),
                       ((60, 90), [(16, 24), (8, 12), (4, 6), (2, 3),
                                   (1, 2)])):
        for _ in range(2):  # the second call is served from the cache
            for a, b in zip(ours.grid_priors(sizes, device='cpu'),
                            ref.grid_priors(sizes, device='cpu')):
                assert torch.equal(a, b)
            for a, b in zip(ours.valid_flags(sizes, pad, 'cpu'),
                            ref.valid_flags(sizes, pad, 'cpu')):
                assert torch.equal(a, b)
        # a 60x90 pad invalidates the last anchor column / row somewhere
    # separate caches, each bounded: priors of one size set, latest flags
    assert len(ours.priors_cache.entries) == 1
    assert len(ours.flags_cache.entries) == 1
    assert ours.priors_cache.hits == 3 and ours.priors_cache.misses == 1
    assert ours.flags_cache.hits == 2 and ours.flags_cache.misses == 2
    first = ours.grid_priors([(4, 4)] * 5, device='cpu')
    again = ours.grid_priors([(4, 4)] * 5, device='cpu')
    assert first is not again and all(a is b for a, b in zip(first, again))
    half = ours.grid_priors([(4, 4)] * 5, dtype=torch.float16, device='cpu')
    assert half[0].dtype == torch.float16


def test_anchor_cache_byte_budget():
    sizes = [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    one = sum(t.numel() * t.element_size() for t in AnchorGenerator(
        **ANCHORS).grid_priors(sizes, device='cpu'))
    gen = CachedAnchorGenerator(**ANCHORS, cache_mib=2.5 * one / 2**20)
    for k in range(4):  # 4 distinct shapes, room for 2
        gen.grid_priors([(h + k, w) for h, w in sizes], device='cpu')
        assert gen.priors_cache.nbytes <= 2.5 * one
    assert len(gen.priors_cache.entries) == 2
    assert gen.priors_cache.nbytes == sum(
        t.numel() * t.element_size()
        for v in gen.priors_cache.entries.values() for t in v)
    # most recent kept: a hit; the oldest was evicted: a miss
    gen.grid_priors([(h + 3, w) for h, w in sizes], device='cpu')
    assert gen.priors_cache.hits == 1
    gen.grid_priors(sizes, device='cpu')
    assert gen.priors_cache.misses == 5
    # an entry larger than the budget is returned, not kept
    tiny = CachedAnchorGenerator(**ANCHORS, cache_mib=0.5 * one / 2**20)
    out = tiny.grid_priors(sizes, device='cpu')
    assert len(out) == 5 and not tiny.priors_cache.entries
    assert tiny.priors_cache.nbytes == 0


def _inputs(batch=2, h=96, w=128, boxes=4):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, h, w), generator=g,
                            dtype=torch.uint8) for _ in range(batch)]
    samples = []
    for _ in range(batch):
        xy = torch.rand(boxes, 2, generator=g) * torch.tensor([w, h]) * 0.6
        wh = (torch.rand(boxes, 2, generator=g) * 0.3 + 0.1) * torch.tensor(
            [w, h])
        ds = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
            flip=False))
        ds.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, 100, (boxes, ), generator=g))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _build(stock: bool):
    cfg = Config.fromfile(DEMO_CONFIG)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    # the anchor cache is opt-in in the configs: on here, off in stock
    model_cfg.rpn_head.anchor_generator.type = 'CachedAnchorGenerator'
    if stock:
        model_cfg.rpn_head.type = 'RPNHead'
        model_cfg.rpn_head.anchor_generator.type = 'AnchorGenerator'
        model_cfg.train_cfg.rpn.assigner.type = 'MaxIoUAssigner'
        model_cfg.train_cfg.rcnn.assigner.type = 'MaxIoUAssigner'
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('boxes', [1, 5])
def test_training_steps_match_stock_mmdet(boxes):
    cfg = Config.fromfile(DEMO_CONFIG).model
    assert cfg.rpn_head.anchor_generator.type == 'AnchorGenerator'  # opt-in
    assert cfg.train_cfg.rpn.assigner.type == 'SyncFreeMaxIoUAssigner'
    ours, stock = _build(False), _build(True)
    assert type(stock.rpn_head.prior_generator) is AnchorGenerator
    assert isinstance(ours.rpn_head.prior_generator, CachedAnchorGenerator)
    assert type(stock.rpn_head) is RPNHead
    assert isinstance(ours.rpn_head, BatchedRPNHead)
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            for m in (ours, stock)]
    data = _inputs(boxes=boxes)
    for step in range(3):
        results = []
        for model, opt in zip((ours, stock), opts):
            torch.manual_seed(step)  # the samplers draw from torch's RNG
            batch = model.data_preprocessor(copy.deepcopy(data), True)
            losses = model.loss(batch['inputs'], batch['data_samples'])
            total, _ = model.parse_losses(losses)
            opt.zero_grad()
            total.backward()
            grads = [p.grad.clone() for p in model.parameters()
                     if p.grad is not None]
            opt.step()
            results.append((losses, grads))
        (lo, go), (ls, gs) = results
        assert lo.keys() == ls.keys()
        for k in lo:
            a, b = lo[k], ls[k]
            for x, y in zip(a if isinstance(a, list) else [a],
                            b if isinstance(b, list) else [b]):
                assert torch.equal(x, y), (step, k)
        assert len(go) == len(gs)
        assert all(torch.equal(x, y) for x, y in zip(go, gs)), step


@pytest.mark.parametrize('nms_pre', [50, 100000])
def test_batched_rpn_proposals_equal_mmdet(nms_pre):
    """Images of different shapes in one padded batch (each clipped to its
    own shape), with and without the top-k pre-selection."""
    from mmengine.config import ConfigDict
    cfg = dict(
        in_channels=8, feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', **ANCHORS),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    ours, ref = BatchedRPNHead(**cfg), RPNHead(**cfg)
    g = torch.Generator().manual_seed(0)
    sizes = [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    cls = [torch.randn(3, 3, h, w, generator=g) for h, w in sizes]
    reg = [torch.randn(3, 12, h, w, generator=g) * 0.5 for h, w in sizes]
    metas = [dict(img_shape=s, pad_shape=(64, 96), scale_factor=(1., 1.))
             for s in ((64, 96), (50, 70), (33, 96))]
    proposal_cfg = ConfigDict(nms_pre=nms_pre, max_per_img=60,
                              nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0)
    a = ours.predict_by_feat(cls, reg, batch_img_metas=metas,
                             cfg=proposal_cfg)
    b = ref.predict_by_feat(cls, reg, batch_img_metas=metas,
                            cfg=proposal_cfg)
    for x, y, meta in zip(a, b, metas):
        assert len(x) == len(y) > 10
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(x.get(key), y.get(key)), key
        h, w = meta['img_shape']
        assert x.bboxes[:, 2].max() <= w and x.bboxes[:, 3].max() <= h
