"""Re-initialising a subnet from a seed alone."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["reinitialize"]


def reinitialize(model: nn.Module, seed: int) -> nn.Module:
    """Reset every submodule that has ``reset_parameters`` after ``torch.manual_seed(seed)``, in ``modules()`` order.

    Every weight and BN buffer is re-drawn, so the initial state depends only on the seed and
    the network's structure, not on how the network was constructed. Returns ``model``.
    """
    torch.manual_seed(seed)
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return model
