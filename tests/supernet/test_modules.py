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


class _Choices(ModelSpace):
    """A layer choice used twice under one label, an input choice of two, and a repeat (not a plain layer)."""

    def __init__(self) -> None:
        super().__init__()
        from nni.nas.nn.pytorch import InputChoice, LayerChoice, Repeat
        self.a = LayerChoice([nn.Linear(2, 2), nn.Identity()], label="op")
        self.b = LayerChoice([nn.Linear(2, 2), nn.Identity()], label="op")
        self.pick = InputChoice(2, 2, reduction="sum", label="inputs")
        self.blocks = Repeat(lambda i: nn.Linear(2, 2), (1, 2), label="depth")

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.blocks(self.pick([self.a(x), self.b(x)]))


def test_arch_setter_sets_what_nnis_resample_would() -> None:
    from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingRepeat
    model = supernet.mutate_to_supernet(_Choices())
    set_arch = supernet.arch_setter(model)
    arch = {"op": 1, "inputs": (0, 1), "depth": 2}
    set_arch(arch)
    reference = {}
    for module in supernet.supernet_modules(model):
        reference.update(type(module).resample(module, memo={**arch, "inputs": [0, 1]}))
    assert model.a._sampled == model.b._sampled == 1 and model.pick._sampled == [0, 1]
    assert isinstance(model.blocks, PathSamplingRepeat) and model.blocks._sampled == 2
    assert reference == {"op": 1, "inputs": [0, 1], "depth": 2}
    set_arch({"inputs": (1, 0), "depth": 1})  # "op" missing: drawn at random, as NNI's resample does
    assert model.a._sampled in (0, 1) and model.a._sampled == model.b._sampled and model.blocks._sampled == 1
