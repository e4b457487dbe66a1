"""Tests of the supernet plumbing (``supernet/modules.py``) and its use by the NNI strategy."""
from __future__ import annotations

import nni
import pytest
import torch.nn as nn
from nni.nas.nn.pytorch import ModelSpace, MutableModule

from nni_dynamic_supernet import nni_bridge, supernet
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe


class _NoOneShot(MutableModule):
    """A module holding a mutable that no mutation hook turns into a one-shot module."""

    def __init__(self) -> None:
        super().__init__()
        self.width = self.add_mutable(nni.choice("odd_width", [1, 2]))

    def forward(self, x):  # type: ignore[no-untyped-def]
        return x


class _Space(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.odd = _NoOneShot()
        self.head = nn.Linear(2, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(x)


def test_a_module_without_one_shot_version_is_one_config_error_line() -> None:
    with pytest.raises(ConfigError, match="odd.*dangling mutables") as info:
        supernet.mutate_to_supernet(_Space())
    assert info.value.field == "space" and "\n" not in str(info.value)


def test_the_strategy_refuses_it_the_same_way() -> None:
    strategy = nni_bridge.DynamicSupernetStrategy(Recipe.from_dict({"strategy": "spos"}))
    with pytest.raises(ConfigError, match="odd.*dangling mutables") as info:
        strategy.mutate_model(_Space())
    assert info.value.field == "space" and "\n" not in str(info.value)


def test_the_strategy_defaults_to_the_layer_choice_hooks() -> None:
    # Before a space is mutated the strategy offers the fast LayerChoice-only hooks.
    strategy = nni_bridge.DynamicSupernetStrategy(Recipe.from_dict({"strategy": "spos"}))
    assert strategy.default_mutation_hooks() == supernet.modules.layer_choice_hooks()


def test_the_bridge_re_exports_the_plumbing() -> None:
    # Users import these from the bridge; they are the supernet package's own functions.
    for name in ("mutate_to_supernet", "supernet_modules", "arch_setter", "op_modules", "shared_labels"):
        assert getattr(nni_bridge, name) is getattr(supernet, name)
