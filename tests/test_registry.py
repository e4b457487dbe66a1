"""Tests of the registry and its catalog: entry-point discovery, create_/list_ functions, unknown names."""
from __future__ import annotations

import importlib.metadata

import pytest
import torch

from nni_dynamic_supernet import catalog
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import (SPACE_GROUP, STRATEGY_GROUP, create_space, create_strategy, get_preset,
                                           list_spaces, list_strategies)
from nni_dynamic_supernet.strategies import Preset

torch.set_num_threads(1)

BUILTIN_STRATEGIES = {"spos", "spos_calr", "spos_ms", "spos_calr_ms", "fairnas", "fairnas_calr_ms", "fsnas",
                      "fsnas_calr_ms"}
BUILTIN_SPACES = {"nas_bench_201", "mobilenet", "shufflenet"}
TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)


def test_list_strategies_includes_builtins_sorted():
    names = list_strategies()
    assert BUILTIN_STRATEGIES <= set(names)
    assert names == sorted(names)


def test_list_spaces_includes_builtins_sorted():
    names = list_spaces()
    assert BUILTIN_SPACES <= set(names)
    assert names == sorted(names)


def test_entry_points_are_installed_and_discovered():
    strategies = {ep.name for ep in importlib.metadata.entry_points(group=STRATEGY_GROUP)}
    spaces = {ep.name for ep in importlib.metadata.entry_points(group=SPACE_GROUP)}
    assert BUILTIN_STRATEGIES <= strategies
    assert BUILTIN_SPACES <= spaces
    # The registry reads exactly these entry points (not only its built-in fallback table).
    assert set(catalog._entry_points(STRATEGY_GROUP)) == strategies
    assert set(catalog._entry_points(SPACE_GROUP)) == spaces
    assert strategies <= set(list_strategies())
    assert spaces <= set(list_spaces())


def test_entry_point_loads_the_preset_object():
    ep = next(ep for ep in importlib.metadata.entry_points(group=STRATEGY_GROUP) if ep.name == "spos_calr_ms")
    preset = ep.load()
    assert isinstance(preset, Preset)
    assert preset is get_preset("spos_calr_ms")


def test_foreign_entry_point_is_discovered(monkeypatch):
    """A third-party package's preset, registered under the group, becomes a usable strategy."""
    extra = Preset("my_calr", "test preset", "nowhere", {"training.lr_policy": "calr"})

    class FakeEntryPoint:
        name = "my_calr"

        def load(self):
            return extra

    real = importlib.metadata.entry_points

    def fake_entry_points(**kwargs):
        if kwargs.get("group") != STRATEGY_GROUP:
            return real(**kwargs)  # other groups (and the no-argument form torch's plugins call) unchanged
        return [*real(**kwargs), FakeEntryPoint()]

    catalog._entry_points.cache_clear()
    monkeypatch.setattr(catalog.metadata, "entry_points", fake_entry_points)
    try:
        assert "my_calr" in list_strategies()
        recipe = Recipe.from_dict({"strategy": "my_calr"})
        assert recipe.training.lr_policy == "calr"
    finally:
        monkeypatch.undo()
        catalog._entry_points.cache_clear()
    assert "my_calr" not in list_strategies()


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_get_preset(name):
    preset = get_preset(name)
    assert isinstance(preset, Preset) and preset.name == name
    assert preset.summary and preset.paper
    # Every preset fills every component field, so switching strategy never inherits components.
    assert all(key in preset.settings for key in ("training.path_sampler", "training.lr_policy",
                                                  "training.optimizer_state", "training.partition"))


def test_unknown_strategy_lists_known_names():
    with pytest.raises(ConfigError) as info:
        get_preset("darts")
    assert info.value.field == "strategy"
    for name in BUILTIN_STRATEGIES:
        assert name in str(info.value)
    with pytest.raises(ConfigError, match="spos_calr_ms"):
        create_strategy("darts")


def test_unknown_space_lists_known_names():
    with pytest.raises(ConfigError) as info:
        create_space("resnet")
    assert info.value.field == "space.name"
    for name in BUILTIN_SPACES:
        assert name in str(info.value)


def test_create_space_bad_kwarg_is_config_error():
    with pytest.raises(ConfigError) as info:
        create_space("nas_bench_201", not_an_argument=1)
    assert info.value.field == "space.kwargs"


def test_create_space_builds_model_space():
    from nni.nas.nn.pytorch import ModelSpace
    space = create_space("nas_bench_201", **TINY)
    assert isinstance(space, ModelSpace)
    assert len(space.simplify()) == 6
    out = space.freeze({label: "conv_3x3" for label in space.simplify()})(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 3)


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_create_strategy_returns_nni_strategy_with_recipe(name):
    from nni.nas.strategy import Strategy
    strategy = create_strategy(name)
    assert isinstance(strategy, Strategy)
    assert isinstance(strategy.recipe, Recipe)
    assert strategy.recipe.strategy == name
    assert strategy.recipe == Recipe.from_dict({"strategy": name})


def test_create_strategy_bare_and_dotted_overrides():
    strategy = create_strategy("spos_calr_ms", gamma_max=3, max_evaluations=100, seed=7,
                               **{"search.population": 20, "ranking.n_bins": 10})
    r = strategy.recipe
    assert r.training.gamma_max == 3.0
    assert r.search.max_evaluations == 100
    assert r.search.population == 20
    assert r.ranking.n_bins == 10
    assert r.seed == 7
    assert r.training.lr_policy == "calr"


def test_create_strategy_bare_override_can_replace_preset_component():
    r = create_strategy("spos_calr_ms", lr_policy="static").recipe
    assert r.training.lr_policy == "static" and r.training.optimizer_state == "separated"


def test_create_strategy_unknown_override():
    with pytest.raises(ConfigError) as info:
        create_strategy("spos", learning_rate=0.1)
    assert info.value.field == "learning_rate"


def test_create_strategy_invalid_override_value():
    with pytest.raises(ConfigError) as info:
        create_strategy("spos", lr=-1)
    assert info.value.field == "training.lr"


def _setup_lists() -> dict[str, list[str]]:
    """``STRATEGIES`` and ``SPACES`` of setup.py, read without running setup()."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[1] / "setup.py").read_text())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("STRATEGIES", "SPACES")}


def test_setup_entry_points_are_the_preset_table():
    """The strategy list exists once, in strategies.py: setup.py's entry points must name exactly those presets."""
    from nni_dynamic_supernet.strategies import PRESETS

    lists = _setup_lists()
    assert lists["STRATEGIES"] == list(PRESETS)
    assert set(catalog._builtin_strategies()) == set(PRESETS)
    assert all(get_preset(name) is PRESETS[name] or get_preset(name) == PRESETS[name] for name in PRESETS)
    assert set(lists["SPACES"]) == set(catalog._BUILTIN_SPACES)
