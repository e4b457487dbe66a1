"""Every nnictl example names a template that exists, and every parameter combination is a valid recipe."""
from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pytest
import yaml

from nni_dynamic_supernet.recipe import load_recipe, parse_override

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_grid_is_valid(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    command = config.get("trialCommand") or config["trainingService"]["master"]["command"]  # kubeflow: per role
    argv = shlex.split(command)
    assert argv[:3] == ["python3", "-m", "nni_dynamic_supernet.trial"]
    template = REPO / argv[argv.index("--config") + 1]
    assert template.is_file()
    extra = dict(parse_override(argv[i + 1]) for i, a in enumerate(argv) if a == "--set")
    space = config["searchSpace"]
    names = list(space)
    grid = list(itertools.product(*(space[n]["_value"] for n in names)))
    assert config["maxTrialNumber"] == len(grid)
    for values in grid:
        recipe = load_recipe(template, {**extra, **dict(zip(names, values))})
        # The embedded benchmark's own table, or NAS-Bench-201's for the CIFAR-10 paper templates.
        expected = "nasbench201" if recipe.data.name == "cifar10" else "auto"
        assert recipe.ranking.ground_truth == expected


def test_gpu_example_asks_one_gpu_per_trial() -> None:
    from nni.experiment.config import ExperimentConfig
    raw = yaml.safe_load((REPO / "examples" / "spos_calr_gpu.yml").read_text())
    config = ExperimentConfig(**raw)
    config.validate()
    assert config.trial_gpu_number == 1
    argv = shlex.split(raw["trialCommand"])
    recipe = load_recipe(REPO / argv[argv.index("--config") + 1],
                         dict(parse_override(argv[i + 1]) for i, a in enumerate(argv) if a == "--set"))
    assert (recipe.space.name, recipe.data.name, recipe.space.kwargs) == (
        "nas_bench_201", "cifar10", {"channels": 16, "cells_per_stage": 5})
    assert recipe.training.epochs < 250 and recipe.training.accelerator == "gpu"


@pytest.mark.parametrize("path", sorted((REPO / "config_templates").glob("*.yaml")), ids=lambda p: p.name)
def test_config_template_is_valid(path: Path) -> None:
    load_recipe(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_a_valid_nni_experiment_config(path: Path, tmp_path: Path) -> None:
    """NNI's own config classes accept every example, the remote and Kubeflow ones included."""
    from nni.experiment.config import ExperimentConfig
    raw = yaml.safe_load(path.read_text())
    key = tmp_path / "id_rsa"
    key.write_text("not a real key")
    for machine in raw["trainingService"].get("machineList", []):
        machine["sshKeyFile"] = str(key)  # NNI checks that the key file exists
    config = ExperimentConfig(**raw)
    config.validate()
    assert config.training_service.platform == raw["trainingService"]["platform"]


def test_every_example_is_listed_in_the_docs() -> None:
    usage = (REPO / "docs" / "usage.rst").read_text()
    for example in EXAMPLES:
        assert f"``examples/{example.name}``" in usage, example.name
