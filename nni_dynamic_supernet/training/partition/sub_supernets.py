"""Handing training state between sub-supernets when a partition leaf splits (GM-NAS).

A child in a fresh weight slot either *inherits* its parent (weights and every optimizer
state, all MS clusters included, as GM-NAS does at non-final splits) or *restarts* (the
supernet's initial weights and no optimizer state, GM-NAS's ``restart='final'``). Slots are
pre-allocated, so the optimizer's parameter groups never change shape; a slot that no leaf
uses gets no gradient and is never stepped.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["inherit_leaf", "restart_leaf"]


@torch.no_grad()
def inherit_leaf(engine: Any, source: int, target: int) -> None:
    """Copy slot ``source``'s weights, buffers and optimizer states into slot ``target``."""
    src, dst = engine.models[source], engine.models[target]
    dst.load_state_dict({k: v.detach().clone() for k, v in src.state_dict().items()})
    param_map = {id(p): q for p, q in zip(src.parameters(), dst.parameters())}
    engine.state_policy.copy_leaf(source, target, param_map)


@torch.no_grad()
def restart_leaf(engine: Any, slot: int, initial: dict) -> None:
    """Reset slot ``slot`` to the initial weights and drop its optimizer states."""
    engine.models[slot].load_state_dict(initial)
    engine.state_policy.clear_leaf(slot)
