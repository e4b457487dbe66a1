"""Components register themselves: the recipe's allowed values, its keys and the engine follow the registries.

The proof that one technique lives in one place: a toy path sampler defined and registered in
this test file alone (its class, its options with a field of its own, its builder) is a valid
``training.path_sampler``, its option is a valid recipe key, and ``nds train`` trains with it.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator

import pytest

from nni_dynamic_supernet import cli
from nni_dynamic_supernet.components import (DATA_SAMPLERS, LR_POLICIES, OPTIMIZER_STATES, PARTITIONERS,
                                             PATH_SAMPLERS, REGISTRIES, SEARCHERS, Registry)
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import _CHOICES, Recipe
from nni_dynamic_supernet.sections import SearchConfig, TrainingConfig
from nni_dynamic_supernet.training.context import EngineContext
from nni_dynamic_supernet.training.paths.samplers import PathSampler

from .tiny_recipe import write_recipe

#: Every built sampler of the toy kind, so a test can see what the engine trained.
TOY_SAMPLERS: list["ToyPathSampler"] = []


class ToyPathSampler(PathSampler):
    """One path per step: every label takes its ``choice``-th value (the last one if it has fewer)."""

    def __init__(self, choice: int, seed: int = 0) -> None:
        super().__init__(seed)
        self.choice = choice
        self.drawn: list[dict] = []

    def sample(self, space: dict) -> list[dict]:
        arch = {label: values[min(self.choice, len(values) - 1)] for label, values in space.items()}
        self.drawn.append(arch)
        return [arch]


@dataclasses.dataclass(frozen=True)
class ToyOptions:
    """``training.toy_choice``: a field no package file declares."""

    toy_choice: int = 0

    def __post_init__(self) -> None:
        if self.toy_choice < 0:
            raise ConfigError("training.toy_choice", self.toy_choice, "must be >= 0")


def build_toy(options: ToyOptions, context: EngineContext) -> ToyPathSampler:
    """Every label's ``toy_choice``-th value."""
    sampler = ToyPathSampler(options.toy_choice, seed=context.seed)
    TOY_SAMPLERS.append(sampler)
    return sampler


@pytest.fixture
def toy_sampler() -> Iterator[None]:
    """The toy sampler registered as ``training.path_sampler: toy`` for one test."""
    PATH_SAMPLERS.register("toy", options=ToyOptions)(build_toy)
    TOY_SAMPLERS.clear()
    yield
    PATH_SAMPLERS.unregister("toy")
    TOY_SAMPLERS.clear()


def test_a_path_sampler_registered_in_a_test_file_trains(toy_sampler: None, tmp_path: Path) -> None:
    config = write_recipe(tmp_path / "toy.yaml", training={"path_sampler": "toy", "epochs": 2,
                                                           "max_steps_per_epoch": 2})
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(config), "--out", str(out), "--set", "training.toy_choice=2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["recipe"]["training"]["path_sampler"] == "toy"
    assert results["recipe"]["training"]["toy_choice"] == 2  # the component's own field is part of the recipe
    assert results["training"]["steps"] == 4
    sampler = TOY_SAMPLERS[-1]
    assert len(sampler.drawn) == 4
    assert all(arch == sampler.drawn[0] for arch in sampler.drawn)
    assert set(sampler.drawn[0].values()) == {"conv_1x1"}  # NAS-Bench-201's third op on every edge
    # The checkpoint's recipe rebuilds with the toy's field: nds evaluate reads it back.
    archs = tmp_path / "archs.json"
    archs.write_text(json.dumps([sampler.drawn[0]]))
    assert cli.main(["evaluate", "--checkpoint", str(out / "supernet.pt"), "--archs", str(archs),
                     "--out", str(tmp_path / "preds.json")]) == 0


def test_a_registered_component_s_options_are_validated_and_named(toy_sampler: None) -> None:
    recipe = Recipe.from_dict({"training": {"path_sampler": "toy"}}, {"training.toy_choice": "3"})
    assert recipe.training.toy_choice == 3  # coerced by the options dataclass's type
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"training": {"path_sampler": "toy", "toy_choice": -1}})
    assert str(info.value) == "training.toy_choice=-1: must be >= 0"
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"training": {"path_sampler": "nope"}})
    assert info.value.field == "training.path_sampler" and "toy" in info.value.fix


def test_an_unregistered_component_leaves_nothing_behind(toy_sampler: None) -> None:
    PATH_SAMPLERS.unregister("toy")
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"training": {"path_sampler": "toy"}})
    assert info.value.fix == "allowed values: uniform, strict_fair, cluster_fair, importance"
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({}, {"training.toy_choice": 1})
    assert info.value.field == "training.toy_choice" and "unknown field" in info.value.fix
    PATH_SAMPLERS.register("toy", options=ToyOptions)(build_toy)  # the fixture unregisters it again


def test_allowed_values_come_from_the_registries() -> None:
    expected = {
        PATH_SAMPLERS: ("uniform", "strict_fair", "cluster_fair", "importance"),
        DATA_SAMPLERS: ("uniform", "importance"),
        LR_POLICIES: ("static", "calr"),
        OPTIMIZER_STATES: ("shared", "separated"),
        PARTITIONERS: ("none", "exhaustive", "gradient_matching"),
        SEARCHERS: ("evolution", "random", "exhaustive", "shifted_evolution", "nsga2"),
    }
    for registry, names in expected.items():
        assert registry.names() == names
        assert registry.field not in _CHOICES  # no second list of the same names
        bad = {registry.field: "nope"}
        with pytest.raises(ConfigError) as info:
            Recipe.from_dict({}, bad)
        assert (info.value.field, info.value.fix) == (registry.field, f"allowed values: {', '.join(names)}")


def test_the_cli_searcher_choices_are_the_registry(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["search", "--help"]) == 0
    assert ", ".join(SEARCHERS.names()) in " ".join(capsys.readouterr().out.split())
    assert cli.main(["search", "--checkpoint", "x.pt", "--out", "o", "--searcher", "nope"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'shifted_evolution'" in err


#: The fields of a section no registered component owns: the run's core settings.
CORE_FIELDS = {
    "training": {"epochs", "lr", "momentum", "nesterov", "weight_decay", "optimizer", "grad_clip",
                 "max_steps_per_epoch", "path_sampler", "lr_policy", "optimizer_state", "update_rule", "partition",
                 "data_sampler", "task_batching", "unused_grads", "checkpoint_every_n_epochs", "num_threads",
                 "skip_nonfinite", "accelerator", "devices", "num_nodes", "precision", "channels_last",
                 "sync_batchnorm"},
    "search": {"searcher", "max_evaluations", "max_seconds", "constraint_metric", "constraint_min", "constraint_max",
               "bn_mode", "bn_batches", "top_k", "track_archs", "leaf_selection", "leaf_probe_archs",
               "halving_epochs"},
}


@pytest.mark.parametrize("section, config", [("training", TrainingConfig), ("search", SearchConfig)])
def test_every_component_field_is_owned_by_a_registered_component(section: str, config: type) -> None:
    """A section's fields are its core fields plus the options its components declare, with the same defaults."""
    declared = {f.name: f for f in dataclasses.fields(config)}
    owned: dict[str, list[str]] = {}
    for registry in REGISTRIES:
        if registry.section != section:
            continue
        for component in registry:
            for f in dataclasses.fields(component.options) if component.options else ():
                owned.setdefault(f.name, []).append(f"{registry.kind} {component.name}")
                assert f.name in declared, f"{component.name} owns {section}.{f.name}, which the section lacks"
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                mine = declared[f.name]
                section_default = mine.default_factory() if mine.default_factory is not dataclasses.MISSING \
                    else mine.default
                assert default == section_default, f"{section}.{f.name}: {component.name}'s default differs"
    assert set(declared) - set(owned) == CORE_FIELDS[section]
    assert not CORE_FIELDS[section] & set(owned)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.kind)
def test_every_registered_component_builds_its_options_from_the_default_recipe(registry: Registry) -> None:
    section = getattr(Recipe.from_dict({}), registry.section)
    for component in registry:
        options = component.options_from(section)
        assert (options is None) == (component.options is None)
        assert component.summary, f"{component.name} has no one-line docstring"


def test_a_name_registered_twice_is_refused() -> None:
    assert "uniform" in PATH_SAMPLERS  # the built-ins are loaded
    with pytest.raises(ValueError, match="already registered"):
        PATH_SAMPLERS.register("uniform")(build_toy)
