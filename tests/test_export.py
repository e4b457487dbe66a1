"""``nds export`` and the subnet it freezes, on every registered space and NNI's DARTS and NAS-Bench-101 cells.

The registered spaces are read from the registry, so a new one is picked up. NNI's ``DARTS`` and
``NasBench101`` hub spaces are registered here as a third-party package would register them (an
entry point of ``nni_dynamic_supernet.spaces``): their supernets are where export used to fail
(NAS-Bench-101 refused to freeze; DARTS exported new random weights). Each space trains two steps,
then two architectures of different sizes are frozen and exported.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nni_dynamic_supernet.cli import main
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.export import export_subnet, frozen_subnet, inherited_subnet
from nni_dynamic_supernet.pipeline import Run, prepare, train
from nni_dynamic_supernet.stages import space_kwargs
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space, list_spaces
from nni_dynamic_supernet.spaces.introspection import arch_for_nni, arch_is_valid
from nni_dynamic_supernet.supernet.modules import arch_setter, supernet_modules
from nni_dynamic_supernet.supernet.nasbench101 import FrozenNasBench101Cell
from nni_dynamic_supernet.supernet.subnet import freeze_subnet

from .hub_entry_points import HUB_CELL_SPACES, hub_cell_spaces  # noqa: F401 (fixture)
from .test_every_strategy_and_space import TINY_SPACES
from .tiny_recipe import tiny_recipe, write_recipe

torch.set_num_threads(1)

SPACES = sorted(list_spaces()) + sorted(HUB_CELL_SPACES)


def _recipe(space: str) -> dict:
    return tiny_recipe(space={"name": space, "kwargs": TINY_SPACES.get(space, {})},
                       training={"max_steps_per_epoch": 2})


@pytest.fixture(scope="module")
def runs(hub_cell_spaces: None) -> dict[str, Run]:
    """One trained (two steps) run per space, built on first use."""
    return {}


def _trained(runs: dict[str, Run], space: str) -> Run:
    if space not in runs:
        run = prepare(Recipe.from_dict(_recipe(space)))
        assert train(run, None)["steps"] == 2
        runs[space] = run
    return runs[space]


def _param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _two_archs(run: Run) -> list[dict]:
    """Two valid architectures whose frozen models differ in parameter count (fixed seed)."""
    rng = np.random.RandomState(0)
    found: dict[int, dict] = {}
    for _ in range(200):
        arch = {label: values[rng.randint(len(values))] for label, values in run.search_space.items()}
        if arch_is_valid(run.pristine_space, arch):
            found.setdefault(_param_count(run.pristine_space.freeze(arch_for_nni(arch))), arch)
            if len(found) == 2:
                return list(found.values())
    raise AssertionError("no two architectures of different sizes found")


def _fresh_space(run: Run) -> Any:
    """The run's space built anew, as a user rebuilds it to load an export."""
    return create_space(run.recipe.space.name, **space_kwargs(run.recipe, run.splits))


def _batch(run: Run) -> torch.Tensor:
    return torch.stack([run.splits.val[i][0] for i in range(4)])


@pytest.mark.parametrize("space", SPACES)
def test_export_is_the_spaces_frozen_model_with_the_supernets_weights(space: str, runs: dict, tmp_path: Path) -> None:
    run = _trained(runs, space)
    supernet = run.models[0].eval()
    x = _batch(run)
    sizes = []
    for arch in _two_archs(run):
        sample = arch_for_nni(arch)
        arch_setter(supernet)(arch)
        with torch.no_grad():
            expected = supernet(x)
            # The subnet taken out of the supernet computes what the supernet computes, with its weights.
            subnet = freeze_subnet(supernet, sample).eval()
            assert not supernet_modules(subnet)
            assert torch.allclose(subnet(x), expected, atol=1e-5)
            supernet_params = {id(p) for p in supernet.parameters()}
            assert all(id(p) in supernet_params for p in subnet.parameters())

            model = inherited_subnet(supernet, run.pristine_space, sample).eval()
            fresh = _fresh_space(run).freeze(sample)
            assert type(model) is type(fresh) and not supernet_modules(model)
            assert {k: v.shape for k, v in model.state_dict().items()} == \
                   {k: v.shape for k, v in fresh.state_dict().items()}
            narrower = [m for m in subnet.modules() if isinstance(m, FrozenNasBench101Cell)
                        and min(m.channels[1:-1], default=m.channels[-1]) < m.channels[-1]]
            if not narrower:
                assert torch.allclose(model(x), expected, atol=1e-5)
            subnet_state = subnet.state_dict()
            for key, value in model.state_dict().items():  # narrower vertices: the leading channels
                assert torch.equal(value, subnet_state[key][tuple(slice(0, d) for d in value.shape)]), key

        out = tmp_path / str(len(sizes))
        paths = export_subnet(run, arch, out)
        meta = json.loads(paths["arch"].read_text())
        assert meta["space"] == space
        # What arch.json's "load" line tells a user to do.
        reloaded = create_space(meta["space"], **meta["space_kwargs"]).freeze(meta["arch"])
        reloaded.load_state_dict(torch.load(paths["weights"], weights_only=True))  # strict
        assert reloaded.eval()(x).shape == (4, run.splits.num_classes)
        sizes.append(_param_count(reloaded))
    assert sizes[0] != sizes[1]


def test_export_refuses_an_architecture_that_breaks_the_cell_constraint(runs: dict) -> None:
    run = _trained(runs, "hub_nasbench101")
    arch = dict(_two_archs(run)[0])
    for label, values in run.search_space.items():  # every node, none of them with an input: OUT is cut off from IN
        if label.endswith("num_nodes"):
            arch[label] = max(values)
        elif "/input" in label:
            arch[label] = ()
    assert not arch_is_valid(run.pristine_space, arch)
    with pytest.raises(ConfigError, match=r"^arch=.*violates the space's constraint") as info:
        frozen_subnet(run, arch)
    assert "\n" not in str(info.value)


# DARTS takes 5 s here (NAS-Bench-101 1 s): the in-process test above exports it already.
@pytest.mark.parametrize("space", [pytest.param("hub_darts", marks=pytest.mark.slow), "hub_nasbench101"])
def test_nds_train_then_export_on_a_hub_cell_space(space: str, hub_cell_spaces: None, tmp_path: Path) -> None:
    config = write_recipe(tmp_path / "tiny.yaml", space={"name": space, "kwargs": {}})
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "run" / "supernet.pt"),
                 "--arch", str(tmp_path / "run" / "best_arch.json"), "--out", str(tmp_path / "export")]) == 0
    meta = json.loads((tmp_path / "export" / "arch.json").read_text())
    model = create_space(meta["space"], **meta["space_kwargs"]).freeze(meta["arch"])
    model.load_state_dict(torch.load(tmp_path / "export" / "weights.pt", weights_only=True))
    assert model.eval()(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_a_space_whose_freeze_builds_another_network_is_refused_in_one_line() -> None:
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

    from nni_dynamic_supernet.supernet.modules import mutate_to_supernet

    class Reshaping(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.block = LayerChoice({"a": torch.nn.Linear(4, 4), "b": torch.nn.Linear(4, 4, bias=False)}, label="b")

        def freeze(self, sample: dict) -> torch.nn.Module:  # not the network the supernet trains
            return torch.nn.Sequential(torch.nn.Linear(4, 2))

    with pytest.raises(ConfigError, match=r"^space='Reshaping': its frozen model and the supernet's subnet hold "
                                          r"different weights \(first: 0\.bias\)") as info:
        inherited_subnet(mutate_to_supernet(Reshaping()), Reshaping(), {"b": "a"})
    assert "\n" not in str(info.value)
