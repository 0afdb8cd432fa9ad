"""VICRegLARS against the official update written out per parameter."""
import contextlib

import pytest
import torch

from projects.vicreg.engine.optimizers import VICRegLARS

LR, WD, MOM, ETA = 0.3, 1e-2, 0.9, 1e-3  # large wd so its effect is visible


def reference_step(p, g, mu, excluded):
    """facebookresearch/vicreg LARS.step for one parameter (float64)."""
    dp = g.clone()
    if not excluded:
        dp = dp + WD * p
        p_norm, d_norm = torch.norm(p).item(), torch.norm(dp).item()
        if p_norm > 0 and d_norm > 0:
            dp = dp * (ETA * p_norm / d_norm)
    mu = MOM * mu + dp
    return p - LR * mu, mu


@contextlib.contextmanager
def no_host_sync():
    """Fail if the step reads a tensor value on the host."""
    def boom(*args, **kwargs):
        raise AssertionError('host synchronisation in optimizer step')
    names = ('item', 'tolist', 'numpy', '__bool__', '__float__', '__int__')
    saved = {n: getattr(torch.Tensor, n) for n in names}
    try:
        for n in names:
            setattr(torch.Tensor, n, boom)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def test_two_steps_match_official_update():
    g = torch.Generator().manual_seed(0)
    params = {
        'weight': torch.randn(4, 3, generator=g, dtype=torch.float64),  # 2-D
        'bias': torch.randn(4, generator=g, dtype=torch.float64),  # excluded
        'zero': torch.zeros(2, 2, dtype=torch.float64),  # ||p|| = 0 -> q = 1
    }
    tensors = {k: v.clone().requires_grad_() for k, v in params.items()}
    opt = VICRegLARS(tensors.values(), lr=LR, weight_decay=WD,
                     momentum=MOM, eta=ETA)
    ref = {k: (v.clone(), torch.zeros_like(v)) for k, v in params.items()}
    for _ in range(2):
        grads = {k: torch.randn(v.shape, generator=g, dtype=torch.float64)
                 for k, v in params.items()}
        for k, t in tensors.items():
            t.grad = grads[k].clone()
        with no_host_sync():
            opt.step()
        for k in params:
            p, mu = ref[k]
            ref[k] = reference_step(p, grads[k], mu, excluded=(k == 'bias'))
            torch.testing.assert_close(tensors[k].detach(), ref[k][0],
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
