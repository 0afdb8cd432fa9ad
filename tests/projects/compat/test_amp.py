"""``grad_scaler`` builds a loss scaler on every supported torch, including
those without ``torch.amp.GradScaler`` (torch < 2.3)."""
import pytest
import torch

from projects.compat.amp import autocast, grad_scaler


def _one_step(scaler):
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.5)
    scaler.scale((w * w).sum()).backward()
    scaler.step(opt)
    scaler.update()
    return w.detach()


def test_disabled_scaler_is_a_plain_step():
    assert torch.allclose(_one_step(grad_scaler('cpu', enabled=False)),
                          torch.zeros(2))


def test_torch_without_amp_grad_scaler(monkeypatch):
    monkeypatch.delattr(torch.amp, 'GradScaler', raising=False)
    # Negative control: the call the benchmarks made before fails here.
    with pytest.raises(AttributeError):
        torch.amp.GradScaler('cpu', enabled=False)
    assert torch.allclose(_one_step(grad_scaler('cpu', enabled=False)),
                          torch.zeros(2))
    with pytest.raises(RuntimeError, match='bf16'):
        grad_scaler('cpu', enabled=True)


def test_disabled_autocast_is_a_no_op():
    x = torch.ones(2, 2)
    with autocast('cpu', torch.float16, enabled=False):
        assert not torch.is_autocast_cpu_enabled()
        assert (x @ x).dtype == torch.float32
    with autocast('cpu', torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16  # enabled: a real autocast
