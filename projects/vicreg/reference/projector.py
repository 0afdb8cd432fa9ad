"""``main_vicreg.py`` ``Projector`` (the expander)."""
import torch.nn as nn


def official_projector(embedding: int, mlp: str) -> nn.Sequential:
    """Linear-BN-ReLU blocks then a bias-free Linear, widths ``mlp``
    (e.g. ``'8192-8192-8192'``) after the backbone's ``embedding``."""
    mlp_spec = f'{embedding}-{mlp}'
    layers = []
    f = list(map(int, mlp_spec.split('-')))
    for i in range(len(f) - 2):
        layers.append(nn.Linear(f[i], f[i + 1]))
        layers.append(nn.BatchNorm1d(f[i + 1]))
        layers.append(nn.ReLU(True))
    layers.append(nn.Linear(f[-2], f[-1], bias=False))
    return nn.Sequential(*layers)
