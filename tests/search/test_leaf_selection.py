"""Choosing the final architecture across sub-supernets: best arch, lowest val loss, successive halving."""
from __future__ import annotations

import torch

from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.search.leaf_selection import (best_per_leaf, select_across_leaves, select_by_val_loss,
                                                        standalone_accuracy, successive_halving)
from nni_dynamic_supernet.training.partition import ExhaustivePartition

torch.set_num_threads(1)

SPACE = {"a": [0, 1, 2, 3], "b": [0, 1]}


def _history():
    return [{"arch": {"a": a, "b": b}, "accuracy": float(10 * a + b), "loss": float(5 - a)}
            for a in SPACE["a"] for b in SPACE["b"]]


def test_best_per_leaf_keeps_each_leafs_best() -> None:
    p = ExhaustivePartition(SPACE, "a")
    best = best_per_leaf(_history(), p.route)
    assert {leaf: r["arch"] for leaf, r in best.items()} == {i: {"a": i, "b": 1} for i in range(4)}


def test_successive_halving_halves_with_doubling_budgets() -> None:
    quality = {0: 3.0, 1: 1.0, 2: 4.0, 3: 2.0, 4: 0.0}
    calls = []

    def train_fn(arch, epochs):
        calls.append((arch["a"], epochs))
        return quality[arch["a"]] * epochs

    order, rounds = successive_halving([{"a": i} for i in range(5)], train_fn, first_epochs=1)
    assert [a["a"] for a in order] == [2, 0, 3, 1, 4]
    assert [r["epochs"] for r in rounds] == [1, 2, 4]
    assert [len(r["scores"]) for r in rounds] == [5, 3, 2]
    assert sorted(calls[:5]) == [(i, 1) for i in range(5)]


def test_val_loss_picks_the_leaf_with_the_lowest_mean_loss() -> None:
    p = ExhaustivePartition(SPACE, "a")
    leaf, losses = select_by_val_loss(p.leaves, lambda arch: {"loss": abs(arch["a"] - 2)}, 3, seed=0)
    assert leaf == 2 and losses[2] == 0.0 and len(losses) == 4
    recipe = Recipe.from_dict({"strategy": "fsnas"}, {"search.leaf_selection": "val_loss", "search.top_k": 5,
                                                      "search.leaf_probe_archs": 2})
    top, info = select_across_leaves(recipe.search, p, _history(), lambda arch: {"loss": abs(arch["a"] - 1)}, None,
                                     seed=recipe.seed)
    assert info["chosen_leaf"] == 1
    assert [r["arch"] for r in top] == [{"a": 1, "b": 1}, {"a": 1, "b": 0}]


def test_successive_halving_selection_puts_the_survivor_first() -> None:
    p = ExhaustivePartition(SPACE, "a")
    recipe = Recipe.from_dict({"strategy": "fsnas"}, {"search.leaf_selection": "successive_halving",
                                                      "search.top_k": 3})
    top, info = select_across_leaves(recipe.search, p, _history(), lambda a: {"loss": 0.0},
                                     lambda arch, epochs: -arch["a"], seed=recipe.seed)  # stand-alone prefers a = 0
    assert top[0]["arch"] == {"a": 0, "b": 1} and info["chosen_leaf"] == 0
    assert len(top) == 3


def test_standalone_accuracy_trains_a_tiny_arch_deterministically() -> None:
    space = create_space("nas_bench_201", channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    arch = dict.fromkeys(["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"], "conv_3x3")
    runs = [standalone_accuracy(space, arch, batches, batches, 2, 0.05, 0.9, 5e-4, seed=0) for _ in range(2)]
    assert runs[0] == runs[1] and 0.0 <= runs[0] <= 100.0
