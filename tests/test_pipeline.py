"""End to end through Lightning: a GM-NAS run splits mid-training, reports its tree, and reloads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet.pipeline import load_supernet, predict, run_recipe
from nni_dynamic_supernet.recipe import Recipe

torch.set_num_threads(1)


@pytest.mark.slow
def test_gm_run_splits_twice_reports_the_tree_and_reloads(tmp_path: Path) -> None:
    recipe = Recipe.from_dict({
        "strategy": "gm_spos", "seed": 0,
        "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 3, "max_steps_per_epoch": 2, "num_threads": 1, "split_epochs": [1, 2],
                     "gm_batches": 2},
        "search": {"searcher": "random", "max_evaluations": 6, "bn_batches": 1},
        "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 2},
        "output": {"tensorboard": False, "diagnostics": False},
    })
    results = run_recipe(recipe, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    tree = on_disk["partition_tree"]
    splits = [n["split"] for n in tree["nodes"] if n["split"]]
    assert [s["epoch"] for s in splits] == [1, 2, 2]  # root after epoch 1, both children after epoch 2
    assert len(on_disk["partition"]) == 4 and len(tree["leaves"]) == 4
    assert all(len(s["similarity"]) == len(s["choices"]) for s in splits)
    assert (tmp_path / "partition_tree.png").is_file()
    assert "leaf_selection" in on_disk["search"]
    run = load_supernet(tmp_path / "supernet.pt")
    assert run.partition.describe() == on_disk["partition"]
    best = results["best_arch"]
    assert predict(run, [best])[0]["predicted_accuracy"] == results["best"]["accuracy"]
