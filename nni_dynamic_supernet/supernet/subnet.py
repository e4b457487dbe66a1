"""One subnet taken out of a supernet with the supernet's weights (NNI's ``freeze``, weights kept).

NNI's ``recursive_freeze`` calls ``freeze`` on every mutable module, and several of those rebuild
the module with new random weights: a ``MutableConv2d`` / ``MutableLinear`` without any mutable
argument (the ``DARTS`` stem and classifier, whose one-shot mutation leaves them plain), a
``LayerChoice`` candidate holding such layers, and a space whose own ``freeze`` re-creates the
whole network (NNI's ``DARTS``/``NDS``). :func:`freeze_subnet` walks the supernet itself:

* a ``LayerChoice`` becomes its chosen candidate, a ``Repeat`` its first ``depth`` blocks, both
  walked further;
* a mutable module without mutables of its own (a plain ``MutableConv2d``, a frozen cell) is kept
  and walked further;
* any other supernet module (NNI's mixed operations, which slice their weights, input choices,
  :class:`~.darts_cell.FreezablePathSamplingCell`, our NAS-Bench-101 cell) is frozen by its own
  ``freeze``, which keeps the weights, and its result is walked further;
* the root is never frozen itself, only its children.

The subnet shares every weight with the supernet (copy it before changing it) and computes what the
supernet computes for the architecture.
"""
from __future__ import annotations

import copy

import torch.nn as nn

from ..quiet_logs import quiet_nni_import

with quiet_nni_import():
    from nni.mutable import Mutable
    from nni.nas.nn.pytorch import LayerChoice, Repeat

__all__ = ["freeze_subnet"]


def freeze_subnet(supernet: nn.Module, sample: dict) -> nn.Module:
    """The subnet of ``supernet`` for the architecture ``sample`` (subsets as lists), sharing its weights."""
    return _freeze_children(supernet, sample)


def _freeze(module: nn.Module, sample: dict) -> nn.Module:
    """``module`` itself frozen for ``sample`` with its weights (see the module docstring)."""
    if isinstance(module, LayerChoice):
        return _freeze(module[module.choice.freeze(sample)], sample)
    if isinstance(module, Repeat):
        depth = module.depth_choice.freeze(sample) if isinstance(module.depth_choice, Mutable) else module.depth_choice
        return nn.Sequential(*(_freeze(block, sample) for block in list(module.blocks)[:int(depth)]))
    if isinstance(module, Mutable) and getattr(module, "mutables", None):
        module = module.freeze(sample)
    return _freeze_children(module, sample)


def _freeze_children(module: nn.Module, sample: dict) -> nn.Module:
    """``module`` with its children frozen: ``module`` itself when none changed, else a copy of this level."""
    replaced = {}
    for name, child in module.named_children():
        frozen = _freeze(child, sample)
        if frozen is not child:
            replaced[name] = frozen
    if not replaced:
        return module
    # A shallow copy of this level only: the untouched children stay shared with the supernet.
    module = copy.copy(module)
    module._modules = dict(module._modules)
    for name, frozen in replaced.items():
        module._modules[name] = frozen
    return module
