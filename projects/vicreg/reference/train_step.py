"""The training step of ``main_vicreg.py``: LARS, autocast and GradScaler."""
from typing import Callable, Tuple

import torch
import torch.nn as nn

from projects.compat.amp import autocast, grad_scaler
from .lars import OfficialLARS, exclude_bias_and_norm
from .model import OfficialVICReg


def build_official_step(
    arch: str,
    mlp: str,
    lr: float,
    device: torch.device,
    amp: bool = True,
    bf16: bool = False,
    channels_last: bool = False,
    compile: bool = False,
) -> Tuple[nn.Module, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The official model on ``device`` (SyncBN on CUDA, as
    ``convert_sync_batchnorm``) and ``step(x, y) -> loss`` doing one LARS
    update (wd 1e-6, 1-D parameters excluded) under autocast when ``amp``:
    fp16 with a dynamic GradScaler, or bf16 without one."""
    model = OfficialVICReg(arch, mlp)
    if device.type == 'cuda':
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = OfficialLARS(model.parameters(), lr=lr, weight_decay=1e-6,
                       weight_decay_filter=exclude_bias_and_norm,
                       lars_adaptation_filter=exclude_bias_and_norm)
    if compile:
        model.backbone.compile()
        model.projector.compile()
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = grad_scaler(
        device.type, enabled=amp and dtype == torch.float16)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt.zero_grad()
        with autocast(device.type, dtype, enabled=amp):
            loss = model.forward(x, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    return model, step
