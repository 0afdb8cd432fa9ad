"""SyncFreeMaxIoUAssigner == mmdet's MaxIoUAssigner, without host syncs."""
import pytest
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch.profiler import ProfilerActivity, profile

from projects.detection.models.sync_free_max_iou_assigner import \
    SyncFreeMaxIoUAssigner


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """The assigners build their IoU calculator from the current scope's
    registry; other tests leave other scopes current."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield

RPN = dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
           match_low_quality=True, ignore_iof_thr=-1)
RCNN = dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
            match_low_quality=False, ignore_iof_thr=-1)


def _overlaps(k, n, seed, quantise=None):
    g = torch.Generator().manual_seed(seed)
    o = torch.rand(k, n, generator=g) ** 2
    if quantise:  # many exact ties, within and across gts
        o = (o * quantise).round() / quantise
    return o


def _same(a, b):
    assert a.num_gts == b.num_gts
    for key in ('gt_inds', 'max_overlaps', 'labels'):
        assert torch.equal(getattr(a, key), getattr(b, key)), key


@pytest.mark.parametrize('cfg', [
    RPN, RCNN,
    dict(RPN, gt_max_assign_all=False),
    dict(RPN, neg_iou_thr=(0.1, 0.3)),
    dict(RPN, min_pos_iou=0.0),
])
@pytest.mark.parametrize('k,n,quantise', [(1, 50, None), (6, 300, None),
                                          (12, 400, 8), (30, 64, 4),
                                          (5, 1, None)])
def test_identical_to_mmdet(cfg, k, n, quantise):
    ours, ref = SyncFreeMaxIoUAssigner(**cfg), MaxIoUAssigner(**cfg)
    for seed in range(4):
        o = _overlaps(k, n, seed, quantise)
        labels = torch.randint(0, 100, (k, ),
                               generator=torch.Generator().manual_seed(seed))
        _same(ours.assign_wrt_overlaps(o, labels),
              ref.assign_wrt_overlaps(o, labels))


def test_low_quality_overwrite_order_matters_and_matches():
    """Anchor 0 is the best anchor of gts 0 and 1 (a tie): mmdet's loop
    leaves it to the later gt; so must we."""
    o = torch.tensor([[0.4, 0.1, 0.05], [0.4, 0.2, 0.05]])
    labels = torch.tensor([7, 9])
    for cfg in (RPN, dict(RPN, gt_max_assign_all=False)):
        a = SyncFreeMaxIoUAssigner(**cfg).assign_wrt_overlaps(o, labels)
        _same(a, MaxIoUAssigner(**cfg).assign_wrt_overlaps(o, labels))
        assert a.gt_inds[0] == 2 and a.labels[0] == 9


def test_empty_cases_and_full_assign_match():
    ours, ref = SyncFreeMaxIoUAssigner(**RPN), MaxIoUAssigner(**RPN)
    for k, n in ((0, 10), (3, 0), (0, 0)):
        o = torch.zeros(k, n)
        labels = torch.zeros(k, dtype=torch.long)
        _same(ours.assign_wrt_overlaps(o, labels),
              ref.assign_wrt_overlaps(o, labels))
    # through assign() with boxes (IoU computed by the same calculator)
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    priors = torch.cat([xy, xy + 10 + torch.rand(200, 2, generator=g) * 40],
                       1)
    gxy = torch.rand(5, 2, generator=g) * 100
    gts = torch.cat([gxy, gxy + 20], 1)
    pred = InstanceData(priors=priors)
    gt = InstanceData(bboxes=gts, labels=torch.arange(5))
    _same(ours.assign(pred, gt), ref.assign(pred, gt))


def _sync_ops(fn):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    counts = {e.key: e.count for e in prof.key_averages()}
    return sum(counts.get(k, 0)
               for k in ('aten::nonzero', 'aten::_local_scalar_dense',
                         'aten::is_nonzero', 'aten::item'))


def test_no_host_sync_ops():
    """The ops that force a device->host copy (nonzero, item/bool) are gone
    (counted with the profiler; on a GPU each is a synchronisation)."""
    o = _overlaps(6, 300, 0)
    labels = torch.arange(6)
    ours, ref = SyncFreeMaxIoUAssigner(**RPN), MaxIoUAssigner(**RPN)
    assert _sync_ops(lambda: ours.assign_wrt_overlaps(o, labels)) == 0
    # the control: mmdet's loop syncs once per gt, plus the label lookup
    assert _sync_ops(lambda: ref.assign_wrt_overlaps(o, labels)) >= 6


def test_registered_and_built_from_config():
    from mmdet.registry import TASK_UTILS

    import projects.detection  # noqa: F401
    a = TASK_UTILS.build(dict(type='SyncFreeMaxIoUAssigner', **RPN))
    assert isinstance(a, SyncFreeMaxIoUAssigner)
