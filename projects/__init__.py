"""Project packages. Importing any of them applies :mod:`projects.compat` first,
so the OpenMMLab stack works on current PyTorch/numpy/transformers."""
from . import compat  # noqa: F401
