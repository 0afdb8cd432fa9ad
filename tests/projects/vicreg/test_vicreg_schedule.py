"""The configs' lr schedule == official adjust_learning_rate, per iteration."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import projects.vicreg  # noqa: F401

# isort: split
from mmpretrain.registry import PARAM_SCHEDULERS
from process_helpers import ROOT
from schedule_helpers import build_schedulers

from projects.vicreg.reference import official_lr

BASELINE = osp.join(ROOT, 'configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled.py')  # noqa: E501
IN1K = osp.join(ROOT, 'configs/vicreg/vicreg_resnet50_32xb64-coslr-1000e_in1k.py')  # noqa: E501


@pytest.mark.parametrize('config,world_size,base_lr,epochs', [
    (BASELINE, 1, 0.15, 230),
    (IN1K, 32, 0.2, 1000),
])
def test_schedule_matches_official(config, world_size, base_lr, epochs):
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    iters_per_epoch = 3  # small: every iteration of the run is compared
    global_batch = world_size * cfg.train_dataloader.batch_size
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    assert cfg.optim_wrapper.optimizer.lr == base_lr
    assert cfg.train_cfg.max_epochs == epochs
    # What mmengine's Runner.scale_lr does with auto_scale_lr enabled.
    lr = base_lr * global_batch / cfg.auto_scale_lr.base_batch_size
    param = torch.zeros(1, requires_grad=True)
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=lr))
    schedulers = build_schedulers(PARAM_SCHEDULERS, cfg, wrapper, epochs,
                                  iters_per_epoch)
    total = epochs * iters_per_epoch
    got = []
    for _ in range(total):
        got.append(wrapper.param_groups[0]['lr'])  # lr used by this iter
        wrapper.step()
        for s in schedulers:
            s.step()
    want = [official_lr(i, base_lr, global_batch, epochs, iters_per_epoch)
            for i in range(total)]
    warmup = 10 * iters_per_epoch
    assert got[0] == 0.0  # exactly, as the official code
    assert got[warmup - 1] == pytest.approx(want[warmup - 1], rel=1e-12)
    assert got[warmup] == pytest.approx(lr, rel=1e-12)  # warmup end: full lr
    assert got[-1] == pytest.approx(want[-1], rel=1e-9)
    assert got[-1] > lr * 1e-3  # one step before reaching end_lr
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == pytest.approx(w, rel=1e-9, abs=1e-15), f'iter {i}'


def _cosine(wrapper, end):
    from projects.vicreg.engine.schedulers import ClosedFormCosineAnnealingLR
    return ClosedFormCosineAnnealingLR(wrapper, begin=0, end=end,
                                       eta_min_ratio=1e-3, by_epoch=False)


def test_resume_keeps_progress_and_takes_shape_from_config():
    param = torch.zeros(1, requires_grad=True)
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=1.0))
    s = _cosine(wrapper, end=10)
    for _ in range(4):
        wrapper.step()
        s.step()
    state = s.state_dict()

    def expected(step, total):
        q = 0.5 * (1 + math.cos(math.pi * step / total))
        return q + 1e-3 * (1 - q)

    # same config: continues exactly
    wrapper2 = OptimWrapper(torch.optim.SGD([param], lr=1.0))
    s2 = _cosine(wrapper2, end=10)
    s2.load_state_dict(state)
    assert wrapper2.param_groups[0]['lr'] == pytest.approx(expected(4, 10))
    # longer run (e.g. resumed with a larger max_epochs): new end, same step
    wrapper3 = OptimWrapper(torch.optim.SGD([param], lr=1.0))
    s3 = _cosine(wrapper3, end=20)
    s3.load_state_dict(state)
    assert wrapper3.param_groups[0]['lr'] == pytest.approx(expected(4, 20))
    wrapper3.step()
    s3.step()
    assert wrapper3.param_groups[0]['lr'] == pytest.approx(expected(5, 20))


def test_run_shorter_than_warmup_is_allowed():
    param = torch.zeros(1, requires_grad=True)
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=1.0))
    from projects.vicreg.engine.schedulers import ClosedFormCosineAnnealingLR
    s = ClosedFormCosineAnnealingLR(wrapper, begin=10, end=10,
                                    eta_min_ratio=1e-3, by_epoch=False)
    assert s.end == 11  # never reached by a run that ends at step 10
