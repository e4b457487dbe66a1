"""Tests of the Recipe: defaults, presets, dotted overrides, YAML loading and validation errors."""
from __future__ import annotations

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe, TrainingConfig, load_recipe, parse_override
from nni_dynamic_supernet.registry import list_strategies
from nni_dynamic_supernet.strategies import COMPONENT_DEFAULTS

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------- defaults
def test_defaults_validate_and_match_dataclass_defaults():
    Recipe().validate()
    built = Recipe.from_dict({})
    assert built.to_dict() == Recipe().to_dict()
    assert built.strategy == "spos"
    assert built.training.path_sampler == "uniform" and built.training.lr_policy == "static"
    assert built.gamma_min == pytest.approx(1.0 / built.training.gamma_max)


def test_component_defaults_agree_with_training_dataclass():
    # The spos preset must not change anything relative to a bare TrainingConfig.
    defaults = TrainingConfig()
    for dotted, value in COMPONENT_DEFAULTS.items():
        assert getattr(defaults, dotted.split(".")[1]) == value, dotted


def test_to_dict_round_trip():
    recipe = Recipe.from_dict({"strategy": "fairnas_calr_ms", "seed": 3}, {"training.gamma_max": 2.5})
    again = Recipe.from_dict(recipe.to_dict())
    assert again == recipe


# ---------------------------------------------------------------------------------------------- presets
def test_preset_spos_calr_ms_sets_components():
    r = Recipe.from_dict({"strategy": "spos_calr_ms"})
    assert r.training.lr_policy == "calr"
    assert r.training.optimizer_state == "separated"
    assert r.training.path_sampler == "uniform"
    assert r.training.partition == "none"


def test_preset_fairnas_calr_ms():
    r = Recipe.from_dict({"strategy": "fairnas_calr_ms"})
    assert r.training.path_sampler == "cluster_fair"
    assert r.training.optimizer_state == "separated"
    assert r.training.lr_policy == "calr"
    assert r.training.grad_clip is None


def test_preset_fsnas_sets_partition():
    assert Recipe.from_dict({"strategy": "fsnas"}).training.partition == "exhaustive"
    assert Recipe.from_dict({"strategy": "spos"}).training.partition == "none"


@pytest.mark.parametrize("where", ["raw", "override"])
def test_explicit_field_overrides_preset(where):
    if where == "raw":
        r = Recipe.from_dict({"strategy": "spos_calr_ms", "training": {"lr_policy": "static"}})
    else:
        r = Recipe.from_dict({"strategy": "spos_calr_ms"}, {"training.lr_policy": "static"})
    assert r.training.lr_policy == "static"
    assert r.training.optimizer_state == "separated"  # the rest of the preset stays


def test_overrides_win_over_raw():
    r = Recipe.from_dict({"training": {"lr": 0.2}, "strategy": "spos"}, {"training.lr": 0.3, "strategy": "spos_ms"})
    assert r.training.lr == 0.3
    assert r.strategy == "spos_ms" and r.training.optimizer_state == "separated"


def test_switching_strategy_by_override_does_not_inherit_components():
    # A template for spos_calr_ms, a tuner choosing plain spos: the calr/MS components must go.
    r = Recipe.from_dict({"strategy": "spos_calr_ms"}, {"strategy": "spos"})
    assert r.training.lr_policy == "static" and r.training.optimizer_state == "shared"


@pytest.mark.parametrize("name", list_strategies())
def test_every_registered_preset_validates(name):
    r = Recipe.from_dict({"strategy": name})
    assert r.strategy == name


# ---------------------------------------------------------------------------------------------- overrides
def test_string_overrides_from_cli_or_nni_are_coerced():
    r = Recipe.from_dict({}, {
        "training.lr": "0.1", "training.nesterov": "false", "training.grad_clip": "null", "training.epochs": "7",
        "search.max_seconds": "2.5", "seed": "4", "ranking.ground_truth": "none",
        "training.ms_labels": "cell/0_1, cell/1_2", "training.sampling_constraint": "{min: 1, max: 5}",
    })
    assert r.training.lr == 0.1 and isinstance(r.training.lr, float)
    assert r.training.nesterov is False
    assert r.training.grad_clip is None
    assert r.training.epochs == 7 and isinstance(r.training.epochs, int)
    assert r.search.max_seconds == 2.5
    assert r.seed == 4
    assert r.ranking.ground_truth is None
    assert r.training.ms_labels == ["cell/0_1", "cell/1_2"]
    assert r.training.sampling_constraint == {"min": 1, "max": 5}


@pytest.mark.parametrize("text,value", [("true", True), ("True", True), ("1", True), ("no", False), ("0", False)])
def test_bool_strings(text, value):
    assert Recipe.from_dict({}, {"training.nesterov": text}).training.nesterov is value


def test_integral_float_accepted_for_int_fields():
    assert Recipe.from_dict({}, {"training.epochs": 3.0}).training.epochs == 3


def test_space_kwargs_overrides():
    r = Recipe.from_dict({"space": {"name": "nas_bench_201", "kwargs": {"channels": 2}}},
                         {"space.kwargs.cells_per_stage": 1})
    assert r.space.kwargs == {"channels": 2, "cells_per_stage": 1}


@pytest.mark.parametrize("text,expected", [
    ("training.lr=0.1", ("training.lr", 0.1)),
    ("training.nesterov=true", ("training.nesterov", True)),
    ("training.grad_clip=null", ("training.grad_clip", None)),
    ("training.ms_labels=[a, b]", ("training.ms_labels", ["a", "b"])),
    ("ranking.ground_truth=x=y.json", ("ranking.ground_truth", "x=y.json")),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_equals():
    with pytest.raises(ConfigError, match="--set"):
        parse_override("training.lr")


def test_parse_override_feeds_recipe():
    pairs = ["training.lr=1e-3", "training.grad_clip=null", "training.nesterov=false"]
    r = Recipe.from_dict({}, dict(parse_override(p) for p in pairs))
    assert r.training.lr == 1e-3 and r.training.grad_clip is None and r.training.nesterov is False


# ---------------------------------------------------------------------------------------------- YAML
def test_load_recipe_from_yaml(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "strategy: spos_calr_ms\n"
        "seed: 5\n"
        "space:\n  name: nas_bench_201\n  kwargs: {channels: 2, cells_per_stage: 1}\n"
        "training:\n  lr: 0.01\n  gamma_max: 3\n  grad_clip: null\n"
        "search:\n  searcher: random\n  max_evaluations: 12\n"
    )
    r = load_recipe(path, {"training.epochs": "2"})
    assert r.strategy == "spos_calr_ms" and r.seed == 5
    assert r.space.kwargs == {"channels": 2, "cells_per_stage": 1}
    assert r.training.lr == 0.01 and r.training.gamma_max == 3.0 and r.training.grad_clip is None
    assert r.training.lr_policy == "calr"
    assert r.training.epochs == 2
    assert r.search.searcher == "random" and r.search.max_evaluations == 12


def test_load_recipe_empty_file_is_refused(tmp_path):
    # An empty recipe is more likely a mistake than a wish for every default (leave out --config for those).
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="is empty") as info:
        load_recipe(path)
    assert info.value.field == "--config"


def test_load_recipe_empty_section_is_accepted(tmp_path):
    # All keys of a section commented out: YAML reads the section as null.
    path = tmp_path / "r.yaml"
    path.write_text("strategy: spos\ntraining:\n  # lr: 0.1\nsearch:\n  max_evaluations: 3\n")
    r = load_recipe(path)
    assert r.training == TrainingConfig()
    assert r.search.max_evaluations == 3


def test_load_recipe_without_path():
    assert load_recipe(None, {"training.lr": 0.2}).training.lr == 0.2


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_recipe(missing)
    assert info.value.field == "--config"
    assert "nope.yaml" in str(info.value) and "not found" in str(info.value)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training: {lr: 0.1\nsearch: [\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert info.value.field == "--config"
    assert "YAML" in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="--config"):
        load_recipe(path)


def test_yaml_error_reaches_field(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("training:\n  lr: -1\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert info.value.field == "training.lr"


# ---------------------------------------------------------------------------------------------- bad values
BAD = [
    # (raw, overrides, field expected in the error)
    ({"foo": 1}, {}, "foo"),
    ({}, {"bogus.lr": 1}, "bogus.lr"),  # the key as typed, not only its section
    ({}, {"training.foo": 1}, "training.foo"),
    ({"training": {"not_a_field": 1}}, {}, "training.not_a_field"),
    ({}, {"training.lr.x": 1}, "training.lr.x"),
    ({"training": 5}, {}, "training"),
    ({}, {"training.lr": "abc"}, "training.lr"),
    ({}, {"training.epochs": "ten"}, "training.epochs"),
    ({}, {"training.epochs": 1.5}, "training.epochs"),
    ({}, {"training.epochs": True}, "training.epochs"),
    ({}, {"training.nesterov": "maybe"}, "training.nesterov"),
    ({}, {"training.optimizer": 5}, "training.optimizer"),
    ({}, {"training.optimizer": "lbfgs"}, "training.optimizer"),
    ({}, {"search.searcher": "bayes"}, "search.searcher"),
    ({}, {"ranking.headline": "auc"}, "ranking.headline"),
    ({}, {"data.batch_size": 0}, "data.batch_size"),
    ({}, {"data.batch_size": -4}, "data.batch_size"),
    ({}, {"training.epochs": 0}, "training.epochs"),
    ({}, {"search.population": 0}, "search.population"),
    ({}, {"training.lr": 0}, "training.lr"),
    ({}, {"training.lr": -0.1}, "training.lr"),
    ({}, {"training.weight_decay": -1e-4}, "training.weight_decay"),
    ({}, {"training.momentum": "nan"}, "training.momentum"),
    ({}, {"training.grad_clip": 0}, "training.grad_clip"),
    ({}, {"training.paths_per_step": 0}, "training.paths_per_step"),
    ({}, {"training.max_steps_per_epoch": -1}, "training.max_steps_per_epoch"),
    ({}, {"training.gamma_max": 2.0, "training.gamma_min": 3.0}, "training.gamma_min"),
    ({}, {"training.gamma_min": -1.0}, "training.gamma_min"),
    ({}, {"training.lr_floor": 1.0}, "training.lr_floor"),
    ({}, {"training.path_sampler": "cluster_fair", "training.optimizer_state": "shared"}, "training.path_sampler"),
    ({"strategy": "spos"}, {"training.path_sampler": "cluster_fair"}, "training.path_sampler"),
    ({}, {"training.sampling_constraint": {"min": 5, "max": 1}}, "training.sampling_constraint.min"),
    ({}, {"training.sampling_constraint": {"lo": 5}}, "training.sampling_constraint.lo"),
    ({}, {"training.sampling_constraint": {"metric": "macs"}}, "training.sampling_constraint.metric"),
    ({}, {"search.select_num": 60, "search.population": 50}, "search.select_num"),
    ({}, {"search.constraint_min": 10, "search.constraint_max": 5}, "search.constraint_min"),
    ({}, {"search.mutation_prob": 1.5}, "search.mutation_prob"),
    ({}, {"search.max_evaluations": 0}, "search.max_evaluations"),
    ({}, {"search.max_evaluations": None, "search.max_seconds": None}, "search.max_evaluations"),
    ({}, {"search.max_seconds": -1}, "search.max_seconds"),
    ({}, {"search.bn_batches": 0}, "search.bn_batches"),
    ({}, {"data.val_fraction": 1.0}, "data.val_fraction"),
    ({"space": {"kwargs": 3}}, {}, "space.kwargs"),
    ({}, {"seed": -1}, "seed"),
    ({}, {"seed": "x"}, "seed"),
    ({"strategy": "not_a_strategy"}, {}, "strategy"),
    ({"strategy": 3}, {}, "strategy"),
]


@pytest.mark.parametrize("raw,overrides,field", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_values_raise_config_error_naming_the_field(raw, overrides, field):
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict(raw, overrides)
    message = str(info.value)
    assert info.value.field == field
    assert message.startswith(field + "=")
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_unknown_strategy_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"strategy": "sposs"})
    message = str(info.value)
    for name in ("spos", "spos_calr_ms", "fairnas_calr_ms", "fsnas"):
        assert name in message


def test_unknown_field_suggests_the_close_one():
    for typed, meant in (("training.epoch", "training.epochs"), ("training.learning_rate", "training.lr"),
                         ("search.populaton", "search.population"), ("training.seed", "`seed` (a top-level key)")):
        with pytest.raises(ConfigError) as info:
            Recipe.from_dict({}, {typed: 2})
        assert f"did you mean `{meant}" in str(info.value) or f"did you mean {meant}" in str(info.value)
        assert "allowed" not in str(info.value)  # one suggestion, not sixty names


def test_unknown_field_lists_allowed_fields_only_when_none_is_close():
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({}, {"training.zzqqx": 0.1})
    message = str(info.value)
    assert "allowed: epochs, lr" in message and "more: `nds config show`" in message
    assert len("nds: error: " + message) < 300


def test_unknown_choice_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({}, {"training.lr_policy": "step"})
    assert "static" in str(info.value) and "calr" in str(info.value)



def test_packaged_embedded_recipe_equals_the_template() -> None:
    from pathlib import Path

    from nni_dynamic_supernet.recipe import EMBEDDED_RECIPE, load_recipe
    template = Path(__file__).resolve().parents[1] / "config_templates" / "embedded.yaml"
    assert EMBEDDED_RECIPE.read_text() == template.read_text()
    assert load_recipe().to_dict() == load_recipe(template).to_dict()


# ---------------------------------------------------------------------------------------------- shifting
def test_shifting_defaults_follow_the_paper():
    s = Recipe.from_dict({}).search
    assert (s.shift_lr, s.shift_momentum, s.shift_weight_decay) == (1e-4, 0.9, 4e-5)
    assert s.shift_iters * s.shift_batch_size == 640  # the paper's samples per candidate
    assert (s.shift_update, s.shift_order) == ("per_generation", "evaluate_first")


@pytest.mark.parametrize("overrides,field", [
    ({"search.shift_order": "train_first"}, "search.shift_order"),  # needs per_candidate updates
    ({"search.shift_update": "sometimes"}, "search.shift_update"),
    ({"search.shift_lr": -1e-4}, "search.shift_lr"),
    ({"search.shift_momentum": 1.0}, "search.shift_momentum"),
    ({"search.shift_iters": 0}, "search.shift_iters"),
    ({"search.objectives": ["params", "flops"]}, "search.objectives"),
    ({"search.objectives": ["accuracy"]}, "search.objectives"),
    ({"search.transfer_to": {"label_map": [0, 1] * 5}}, "search.transfer_to"),  # plain evolution trains no head
    ({"search.searcher": "shifted_evolution", "search.transfer_to": {"colour": 1}}, "search.transfer_to.colour"),
    ({"search.searcher": "shifted_evolution", "search.transfer_to": {"label_map": [0, 0, 0]}},
     "search.transfer_to.label_map"),
    ({"search.freeze_features": True}, "search.freeze_features"),
    ({"data.label_map": [0, -1]}, "data.label_map"),
])
def test_bad_shifting_fields_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        Recipe.from_dict({}, overrides)
    assert err.value.field == field


def test_code_order_and_transfer_validate():
    r = Recipe.from_dict({}, {"search.searcher": "shifted_evolution", "search.shift_update": "per_candidate",
                              "search.shift_order": "train_first", "search.freeze_features": True,
                              "search.transfer_to": {"label_map": [0, 1] * 5}})
    assert r.search.transfer_to == {"label_map": [0, 1] * 5}
