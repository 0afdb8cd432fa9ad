"""``main_vicreg.py`` ``VICReg`` for one process."""
import torch
import torch.nn as nn

from .loss import official_loss_terms
from .projector import official_projector


class OfficialVICReg(nn.Module):
    """torchvision ResNet (zero-init residual, no fc) + projector + loss; on
    one process the official ``FullGatherLayer`` is the identity."""

    def __init__(self, arch: str, mlp: str, sim: float = 25.0,
                 std: float = 25.0, cov: float = 1.0):
        super().__init__()
        import torchvision
        self.backbone = getattr(torchvision.models, arch)(
            zero_init_residual=True)
        embedding = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.projector = official_projector(embedding, mlp)
        self.coeffs = dict(sim=sim, std=std, cov=cov)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.projector(self.backbone(x))
        y = self.projector(self.backbone(y))
        t = official_loss_terms(x, y, **self.coeffs)
        return t['loss_inv'] + t['loss_var'] + t['loss_cov']
