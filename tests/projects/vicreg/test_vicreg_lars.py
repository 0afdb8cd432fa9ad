"""VICRegLARS against the official LARS (projects/vicreg/reference)."""
import pytest
import torch

from projects.vicreg.engine.optimizers import VICRegLARS
from projects.vicreg.reference import OfficialLARS, exclude_bias_and_norm

LR, WD, MOM, ETA = 0.3, 1e-2, 0.9, 1e-3  # large wd so its effect is visible


def test_two_steps_match_official_update(no_host_sync):
    g = torch.Generator().manual_seed(0)
    params = {
        'weight': torch.randn(4, 3, generator=g, dtype=torch.float64),  # 2-D
        'bias': torch.randn(4, generator=g, dtype=torch.float64),  # excluded
        'zero': torch.zeros(2, 2, dtype=torch.float64),  # ||p|| = 0 -> q = 1
    }
    tensors = {k: v.clone().requires_grad_() for k, v in params.items()}
    opt = VICRegLARS(tensors.values(), lr=LR, weight_decay=WD,
                     momentum=MOM, eta=ETA)
    ref = {k: v.clone().requires_grad_() for k, v in params.items()}
    ref_opt = OfficialLARS(ref.values(), lr=LR, weight_decay=WD,
                           momentum=MOM, eta=ETA,
                           weight_decay_filter=exclude_bias_and_norm,
                           lars_adaptation_filter=exclude_bias_and_norm)
    for _ in range(2):
        grads = {k: torch.randn(v.shape, generator=g, dtype=torch.float64)
                 for k, v in params.items()}
        for k in params:
            tensors[k].grad = grads[k].clone()
            ref[k].grad = grads[k].clone()
        with no_host_sync():
            opt.step()
        ref_opt.step()
        for k in params:
            torch.testing.assert_close(tensors[k].detach(), ref[k].detach(),
                                       rtol=1e-12, atol=1e-15)
    # the trust ratio really changed the 2-D update (q = eta*|p|/|d| << 1)
    assert (tensors['weight'] - params['weight']).abs().max() < 1e-2
    assert (tensors['bias'] - params['bias']).abs().max() > 1e-2


def test_param_without_grad_is_untouched():
    w = torch.ones(3, 3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = VICRegLARS([w, b], lr=1.0)
    w.grad = torch.ones(3, 3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3))
    assert 'mu' not in opt.state[b]


def test_registered_and_distinct_from_mmpretrain_lars():
    from mmpretrain.registry import OPTIMIZERS
    assert OPTIMIZERS.get('VICRegLARS') is VICRegLARS
    assert OPTIMIZERS.get('LARS') is not VICRegLARS
    with pytest.raises(ValueError):
        VICRegLARS([torch.zeros(1, requires_grad=True)], lr=-1)
