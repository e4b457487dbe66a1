"""Every registered strategy trains, searches and reports on every registered space, at tiny size.

New strategies and spaces registered as entry points are picked up automatically.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet.pipeline import run_recipe
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import list_spaces, list_strategies

torch.set_num_threads(1)

TINY_SPACES = {
    "nas_bench_201": {"channels": 2, "cells_per_stage": 1},
    "mobilenet": {"widths": [8, 8, 16], "depths": [2, 1, 1], "strides": [1, 2, 1], "stem_channels": 4,
                  "first_channels": 4, "last_channels": 16},
    "shufflenet": {"depths": [1, 1], "widths": [16, 32], "stem_channels": 8, "last_channels": 32, "stem_stride": 1},
}


def tiny_recipe(strategy: str, space: str) -> Recipe:
    """A recipe that runs in a few seconds: 1 epoch of 2 steps, 4 evaluations."""
    return Recipe.from_dict({
        "strategy": strategy, "seed": 0,
        "space": {"name": space, "kwargs": TINY_SPACES.get(space, {})},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 1, "max_steps_per_epoch": 2, "num_threads": 1, "gm_batches": 2},
        "search": {"searcher": "random", "max_evaluations": 4, "bn_batches": 1},
        "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 2},
        "output": {"tensorboard": False},
    })


def test_registry_covers_the_builtins() -> None:
    assert {"spos", "fairnas", "spos_calr_ms", "fairnas_calr_ms", "fsnas", "fsnas_calr_ms"} <= set(list_strategies())
    assert {"nas_bench_201", "mobilenet", "shufflenet"} <= set(list_spaces())


@pytest.mark.parametrize("space", list_spaces())
@pytest.mark.parametrize("strategy", list_strategies())
def test_strategy_runs_on_space(strategy: str, space: str, tmp_path: Path) -> None:
    results = run_recipe(tiny_recipe(strategy, space), tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["strategy"] == strategy
    assert results["training"]["steps"] == 2
    assert len(results["training"]["history"]) == 1
    assert math.isfinite(results["training"]["history"][0]["loss"])
    assert results["search"]["evaluations"] == 4
    assert set(results["best_arch"]) == set(results["search"]["top"][0]["arch"])
    assert 0.0 <= results["default"] <= 100.0
    assert (tmp_path / "supernet.pt").is_file() and (tmp_path / "best_arch.json").is_file()
