"""VICRegLoss against the paper's formulas, and 2-process == 1-process."""
import os.path as osp

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from projects.compat import safe_torch_load
from projects.vicreg.models.losses import VICRegLoss
from projects.vicreg.reference import official_loss_terms

SIM, STD, COV, EPS = 25.0, 25.0, 1.0, 1e-4


def reference_terms(za, zb, sim=SIM, std=STD, cov=COV, eps=EPS):
    """Written from the equations with loops/einsum, sharing no code with
    the implementation."""
    n, d = za.shape
    inv = sum(((za[i] - zb[i])**2).sum() for i in range(n)) / (n * d)

    def variance(z):
        mean = z.sum(0) / n
        var = torch.stack([((z[:, j] - mean[j])**2).sum() / (n - 1)
                           for j in range(d)])
        hinge = [torch.clamp(1 - torch.sqrt(v + eps), min=0) for v in var]
        return sum(hinge) / d

    def covariance(z):
        zc = z - z.sum(0) / n
        c = torch.einsum('ni,nj->ij', zc, zc) / (n - 1)
        off = sum(c[j, k]**2 for j in range(d) for k in range(d) if j != k)
        return off / d

    return dict(
        loss_inv=sim * inv,
        loss_var=std * (variance(za) + variance(zb)) / 2,
        loss_cov=cov * (covariance(za) + covariance(zb)))


def _embeddings(n=10, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Per-dimension scales around 1 so the variance hinge is active for some
    # dimensions and inactive for others; a shared factor makes them
    # correlated so the covariance term is non-trivial.
    scale = torch.linspace(0.1, 2.0, d, dtype=torch.float64)
    shared = torch.randn(n, 1, generator=g, dtype=torch.float64)
    za = torch.randn(n, d, generator=g, dtype=torch.float64) * scale \
        + 0.5 * shared
    zb = za + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return za, zb


def test_loss_value_and_input_grads_match_formula():
    za, zb = _embeddings()
    za1, zb1 = za.clone().requires_grad_(), zb.clone().requires_grad_()
    za2, zb2 = za.clone().requires_grad_(), zb.clone().requires_grad_()
    ours = VICRegLoss()(za1, zb1)
    ref = reference_terms(za2, zb2)
    assert set(ours) == {'loss_inv', 'loss_var', 'loss_cov'}
    for k in ours:
        assert ours[k].dtype == torch.float64
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-10, atol=0)
        assert ref[k] > 0, f'{k} inactive: the test would be vacuous'
    sum(ours.values()).backward()
    sum(ref.values()).backward()
    torch.testing.assert_close(za1.grad, za2.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(zb1.grad, zb2.grad, rtol=1e-9, atol=1e-12)


def test_loss_matches_official_code():
    """The paper formula above and main_vicreg.py agree with ours."""
    za, zb = _embeddings(seed=3)
    ours = VICRegLoss()(za, zb)
    official = official_loss_terms(za, zb, sim=SIM, std=STD, cov=COV)
    for k in ours:
        torch.testing.assert_close(ours[k], official[k], rtol=1e-10, atol=0)


def test_coefficients_scale_each_term():
    za, zb = _embeddings(seed=1)
    base = VICRegLoss()(za, zb)
    other = VICRegLoss(sim_coeff=1.0, std_coeff=2.0, cov_coeff=3.0)(za, zb)
    torch.testing.assert_close(other['loss_inv'], base['loss_inv'] / SIM)
    torch.testing.assert_close(other['loss_var'], base['loss_var'] * 2 / STD)
    torch.testing.assert_close(other['loss_cov'], base['loss_cov'] * 3 / COV)


def test_half_precision_inputs_are_computed_in_fp32():
    za, zb = _embeddings(seed=2)
    out = VICRegLoss()(za.half(), zb.half())
    assert all(v.dtype == torch.float32 for v in out.values())


# --------------------------------------------------------------------------
# Distributed: 2 ranks x B samples == 1 rank x 2B samples.
B, D_IN, D_OUT = 6, 5, 7


class _Toy(nn.Module):
    """Per-sample network (no BatchNorm, so the only cross-sample coupling
    is the loss itself) + VICRegLoss, both views in one forward as VICReg."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(D_IN, 16), nn.Tanh(), nn.Linear(16, D_OUT))
        self.loss = VICRegLoss()

    def forward(self, xa, xb):
        return self.loss(self.net(xa), self.net(xb))


def _problem():
    torch.manual_seed(0)
    model = _Toy().double()
    g = torch.Generator().manual_seed(1)
    xa = torch.randn(2 * B, D_IN, generator=g, dtype=torch.float64)
    xb = xa + 0.3 * torch.randn(2 * B, D_IN, generator=g, dtype=torch.float64)
    return model, xa, xb


def _run(model, xa, xb):
    terms = model(xa, xb)
    sum(terms.values()).backward()
    inner = getattr(model, 'module', model)  # unwrap DDP
    grads = {k: p.grad.clone() for k, p in inner.named_parameters()}
    return {k: v.detach() for k, v in terms.items()}, grads


def _dist_worker(rank, world_size, init_file, out_dir):
    import torch.distributed as dist
    from mmpretrain.models.selfsup.simclr import GatherLayer
    from torch.nn.parallel import DistributedDataParallel as DDP

    import projects.vicreg.models.losses.vicreg_loss as vicreg_loss
    from projects.launch import close_distributed
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world_size)
    model, xa, xb = _problem()
    local = slice(rank * B, (rank + 1) * B)
    ddp = DDP(model)
    terms, grads = _run(ddp, xa[local], xb[local])
    # Negative control: mmpretrain's GatherLayer (backward = grads[rank],
    # no all-reduce) must NOT reproduce the single-process gradients.
    ddp.zero_grad()
    vicreg_loss.batch_all_gather = \
        lambda x: torch.cat(GatherLayer.apply(x), dim=0)
    _, bad_grads = _run(ddp, xa[local], xb[local])
    torch.save(
        dict(terms=terms, grads=grads, bad_grads=bad_grads),
        osp.join(out_dir, f'rank{rank}.pt'))
    del ddp  # it holds the group (see projects.launch.close_distributed)
    close_distributed(completed=True)


def test_two_processes_match_one_process_on_concatenated_batch(tmp_path):
    model, xa, xb = _problem()
    ref_terms, ref_grads = _run(model, xa, xb)

    mp.spawn(_dist_worker, args=(2, str(tmp_path / 'init'), str(tmp_path)),
             nprocs=2, join=True)
    ranks = [safe_torch_load(str(tmp_path / f'rank{r}.pt')) for r in (0, 1)]

    # Variance/covariance: computed on the gathered 2B batch on every rank.
    for out in ranks:
        for k in ('loss_var', 'loss_cov'):
            torch.testing.assert_close(
                out['terms'][k], ref_terms[k], rtol=1e-5, atol=0)
    # Invariance: local per rank; its mean over ranks is the global one.
    inv = (ranks[0]['terms']['loss_inv'] + ranks[1]['terms']['loss_inv']) / 2
    torch.testing.assert_close(inv, ref_terms['loss_inv'], rtol=1e-5, atol=0)
    # Parameter gradients after DDP's averaging.
    for out in ranks:
        for k, g in ref_grads.items():
            torch.testing.assert_close(out['grads'][k], g, rtol=1e-5,
                                       atol=1e-12)
    # mmpretrain's GatherLayer gets them wrong (the test can see the bug).
    assert any(not torch.allclose(ranks[0]['bad_grads'][k], g, rtol=1e-3)
               for k, g in ref_grads.items())


@pytest.mark.parametrize('n', [2, 5])
def test_off_diagonal_count(n):
    from projects.vicreg.models.losses.vicreg_loss import off_diagonal
    x = torch.arange(n * n, dtype=torch.float32).view(n, n)
    off = off_diagonal(x)
    assert off.numel() == n * n - n
    assert set(off.tolist()) == {
        x[i, j].item() for i in range(n) for j in range(n) if i != j}
