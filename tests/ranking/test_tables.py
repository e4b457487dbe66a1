"""Named embedded tables: lookup, `auto` per dataset, and the table a recipe ranks against."""
from __future__ import annotations

import pytest

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking import GroundTruth
from nni_dynamic_supernet.ranking.tables import TABLES, get_table, resolve_table_path, table_for_dataset


def test_named_tables():
    assert list(TABLES) == ["v1", "v2", "v2_26"]
    assert get_table("v1").path.is_file()
    assert table_for_dataset("digits_hard").name == "v1"
    assert table_for_dataset("digits_hard_v2").name == "v2_26"  # the longer-trained table of the same archs
    assert table_for_dataset("cifar10") is None
    assert resolve_table_path("v1") == get_table("v1").path
    assert str(resolve_table_path("some/table.json")) == "some/table.json"
    with pytest.raises(ConfigError, match="use one of v1, v2, v2_26"):
        get_table("v3")


@pytest.mark.parametrize("name", list(TABLES))
def test_every_shipped_table_matches_its_spec(name):
    spec = get_table(name)
    table = GroundTruth.load(spec.path)
    assert (table.dataset, table.space_kwargs) == (spec.dataset, spec.space_kwargs)
    assert table.recipe["protocol"]["epochs"] == spec.epochs
    assert table.recipe["data"]["version"] == spec.version and table.recipe["data"]["checksums_match_reference"]
    assert table.recipe.get("table", "v1") == name and table.recipe["comparable_with_shipped_table"]
    assert all(len(entry["per_seed"]) == len(table.seeds) for entry in table.entries)


def test_v2_26_is_v2_trained_longer():
    """The same architectures, seeds and data; only the stand-alone epochs differ (so runs can be rescored)."""
    v2, v2_26 = (GroundTruth.load(get_table(name).path) for name in ("v2", "v2_26"))
    assert v2.archs() == v2_26.archs() and v2.params() == v2_26.params()
    assert v2.seeds == [0, 1] and v2_26.seeds == [0, 1, 2, 3]  # two more seeds for a less noisy mean
    assert all(set(e["per_seed"]) == {"0", "1", "2", "3"} for e in v2_26.entries)
    assert (get_table("v2").epochs, get_table("v2_26").epochs) == (13, 26)
    assert v2.recipe["data"] == v2_26.recipe["data"]
    assert v2.accuracies() != v2_26.accuracies()


def test_recipes_name_their_table():
    from nni_dynamic_supernet.ranking.lookup import resolve_ground_truth
    from nni_dynamic_supernet.recipe import load_recipe
    from nni_dynamic_supernet.bench.build import NB201_LABELS, NB201_OPS

    space = {label: list(NB201_OPS) for label in NB201_LABELS}
    v1 = {"data.name": "digits_hard", "space.kwargs.channels": 4, "space.kwargs.cells_per_stage": 3}
    named = resolve_ground_truth(load_recipe(None, {**v1, "ranking.ground_truth": "v1"}), space)
    auto = resolve_ground_truth(load_recipe(None, v1), space)
    assert len(named) == len(auto) == 160
    # A v2 run ranks against v2 only: `auto` never falls back to the v1 table.
    v2_auto = load_recipe(None, {"data.name": "digits_hard_v2", "space.kwargs.channels": 8,
                                 "space.kwargs.cells_per_stage": 1})
    v2 = resolve_ground_truth(v2_auto, space)
    assert len(v2) == 150 and v2.dataset == "digits_hard_v2" and v2.recipe["table"] == "v2_26"
    # The embedded default recipe is v2's: its dataset, space size and table.
    default = load_recipe()
    assert default.data.name == "digits_hard_v2" and default.space.kwargs == {"channels": 8, "cells_per_stage": 1}
    assert resolve_ground_truth(default, space).dataset == "digits_hard_v2"


def test_missing_v2_table_names_the_build_command(monkeypatch, tmp_path):
    from nni_dynamic_supernet.ranking import tables
    from nni_dynamic_supernet.bench.build import NB201_LABELS, NB201_OPS
    from nni_dynamic_supernet.ranking.lookup import resolve_ground_truth
    from nni_dynamic_supernet.recipe import load_recipe

    monkeypatch.setattr(tables, "_RESOURCES", tmp_path)  # as in a checkout whose v2 table is not built yet
    space = {label: list(NB201_OPS) for label in NB201_LABELS}
    v2_auto = load_recipe(None, {"data.name": "digits_hard_v2", "space.kwargs.channels": 8,
                                 "space.kwargs.cells_per_stage": 1})
    assert resolve_ground_truth(v2_auto, space) is None
    with pytest.raises(ConfigError, match="bench build --table v2"):
        resolve_ground_truth(load_recipe(None, {"ranking.ground_truth": "v2"}), space)
