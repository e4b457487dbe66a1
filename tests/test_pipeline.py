"""End to end through Lightning: GM-NAS splits and reloads; shifting, transfer and NSGA-II searches."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet.pipeline import load_supernet, predict, run_recipe
from nni_dynamic_supernet.recipe import Recipe

torch.set_num_threads(1)

PARITY = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


def tiny(**search) -> Recipe:
    return Recipe.from_dict({
        "strategy": "spos", "seed": 0,
        "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 1, "max_steps_per_epoch": 2, "num_threads": 1},
        "search": {"max_evaluations": 8, "population": 4, "generations": 2, "select_num": 2, "mutation_num": 2,
                   "crossover_num": 2, "bn_batches": 1, "shift_iters": 1, "shift_batch_size": 16, "top_k": 3,
                   **search},
        "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 0},
        "output": {"tensorboard": False, "diagnostics": False},
    })


@pytest.mark.slow
def test_shifted_search_after_training_saves_moved_copy(tmp_path: Path) -> None:
    results = run_recipe(tiny(searcher="shifted_evolution", shift_lr=0.05, track_archs=2), tmp_path)
    diag = results["search"]["diagnostics"]
    assert results["search"]["searcher"] == "shifted_evolution"
    assert diag["shift"]["candidates_trained"] > 0 and diag["shift"]["steps"] > 0
    assert len(diag["tracked"]["archs"]) == 2 and diag["tracked"]["generations"][0] == -1
    assert all(len(a["error"]) == len(diag["tracked"]["generations"]) for a in diag["tracked"]["archs"])
    trained = load_supernet(tmp_path / "supernet.pt")
    shifted = load_supernet(results["search"]["shifted_checkpoint"])
    a, b = trained.models[0].state_dict(), shifted.models[0].state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the shift is saved; supernet.pt stays as trained
    assert (tmp_path / "evolution_progress.png").is_file() and (tmp_path / "tracked_archs.png").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["search"]["diagnostics"]["shift"]


@pytest.mark.slow
def test_transfer_to_relabelled_digits(tmp_path: Path) -> None:
    results = run_recipe(tiny(searcher="shifted_evolution", transfer_to={"label_map": PARITY},
                              transfer_head_lr=0.05), tmp_path)
    assert results["search"]["transfer"]["num_classes"] == 2
    assert 0.0 <= results["best"]["accuracy"] <= 100.0
    shifted = load_supernet(results["search"]["shifted_checkpoint"])
    assert shifted.splits.num_classes == 2
    assert shifted.models[0].classifier.out_features == 2
    source = load_supernet(tmp_path / "supernet.pt").models[0].state_dict()
    target = shifted.models[0].state_dict()
    assert source["classifier.weight"].shape[0] == 10
    shared = [k for k in source if not k.startswith("classifier.")]
    assert shared and all(source[k].shape == target[k].shape for k in shared)


@pytest.mark.slow
def test_nsga2_front_in_results_and_plotted(tmp_path: Path) -> None:
    results = run_recipe(tiny(searcher="nsga2", objectives=["accuracy", "params"]), tmp_path)
    front = results["search"]["diagnostics"]["pareto_front"]
    assert front and all({"arch", "accuracy", "params"} <= set(r) for r in front)
    assert (tmp_path / "pareto_front.png").is_file()

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
    assert all(s["stability"]["repeats"] == 2 and "margin_over_noise" in s["stability"] for s in splits)
    # The cost of per_leaf: 2 root steps, 2 steps for each of 2 leaves, 2 for each of the 4 restarted leaves.
    assert on_disk["partition_budget"] == {"budget": "per_leaf", "steps_per_leaf": [2, 2, 2, 2],
                                           "total_steps": 2 + 4 + 8, "loop_steps": 6, "cost_factor": 14 / 6}
    assert (tmp_path / "partition_tree.png").is_file()
    assert "leaf_selection" in on_disk["search"]
    run = load_supernet(tmp_path / "supernet.pt")
    assert run.partition.describe() == on_disk["partition"]
    best = results["best_arch"]
    assert predict(run, [best])[0]["predicted_accuracy"] == results["best"]["accuracy"]
