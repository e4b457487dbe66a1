"""NNI 3.0's hub model spaces that every strategy of this package trains, at the sizes the tests use.

:data:`HUB_SPACES` is the list ``tests/test_nni_hub_spaces.py`` parametrizes over and the README's
hub-space table is generated from (``nds list --rst``), so the table says exactly what is
tested. Each entry builds a fresh NNI space (``nni.nas.hub.pytorch``) at a tiny size with 10 classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..quiet_logs import quiet_nni_import

__all__ = ["HubSpace", "HUB_SPACES", "create_hub_space", "hub_space_rows"]


@dataclass(frozen=True)
class HubSpace:
    """One NNI hub space as tested: its class name, tiny keyword arguments and the mutables it uses."""

    name: str
    kwargs: dict = field(default_factory=dict)
    mutables: str = ""
    note: str = ""
    #: The keyword that sets the number of classes (``None``: fixed by the space, 10 for DARTS on CIFAR).
    classes_arg: Any = "num_labels"


HUB_SPACES: tuple[HubSpace, ...] = (
    HubSpace("NasBench201", {"stem_out_channels": 4, "num_modules_per_stack": 1},
             "LayerChoice, one label per edge shared by every cell"),
    HubSpace("ShuffleNetSpace", {"channel_search": True},
             "LayerChoice; ``nni.choice`` channels (sliced MutableConv2d)"),
    HubSpace("ProxylessNAS", {"width_mult": 0.25},
             "LayerChoice nested in Repeat with a depth choice"),
    HubSpace("MobileNetV3Space", {"width_multipliers": (0.25,), "expand_ratios": (1.0, 2.0)},
             "Repeat depth; sliced kernels, expansions, widths (expressions)"),
    HubSpace("DARTS", {"width": 4, "num_cells": 3, "dataset": "cifar"},
             "DARTS cells: op choices and input choices (lists)", classes_arg=None),
    HubSpace("NasBench101", {"stem_out_channels": 4, "num_stacks": 1, "num_modules_per_stack": 1},
             "NasBench101Cell: nodes, ops, input subsets, edge constraint",
             "our path-sampling cell; NNI's one-shot refuses it"),
)
"""Every NNI hub space the tests train with every registered strategy."""


def create_hub_space(name: str, num_classes: int = 10) -> Any:
    """A fresh NNI hub space ``name`` of :data:`HUB_SPACES` at its tested size."""
    with quiet_nni_import():  # NNI's hub loads only when a hub space is built (``nds list`` reads the table)
        import nni.nas.hub.pytorch as hub
    entry = {h.name: h for h in HUB_SPACES}[name]
    classes = {entry.classes_arg: num_classes} if entry.classes_arg else {}
    return getattr(hub, name)(**classes, **entry.kwargs)


def hub_space_rows(strategies: int) -> list[tuple[str, str, str, str]]:
    """The rows of the README's hub-space table: name, tested keyword arguments, decisions, strategies."""
    return [(f"``{h.name}``", "``" + ", ".join(f"{k}={v!r}" for k, v in h.kwargs.items()) + "``",
             h.mutables + (f" ({h.note})" if h.note else ""), f"all {strategies}") for h in HUB_SPACES]
