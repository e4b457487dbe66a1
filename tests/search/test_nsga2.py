"""Tests of NSGA-II: non-dominated sorting, crowding distance, and the Pareto front of a synthetic search."""
from __future__ import annotations

import numpy as np
import pytest

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.search.nsga2 import NSGA2Search, crowding_distance, non_dominated_sort, pareto_front
from nni_dynamic_supernet.search.searchers import Budget, ScoreBoard

LARGE = {f"l{i}": ["p", "q", "r", "s"] for i in range(6)}
SIZE = {"p": 0, "q": 1, "r": 3, "s": 6}
GAIN = {"p": 0.0, "q": 2.0, "r": 3.0, "s": 3.5}


def tradeoff(arch):
    """Accuracy grows with size, with diminishing returns: a real trade-off between the objectives."""
    return {"accuracy": sum(GAIN[v] for v in arch.values()), "params": sum(SIZE[v] for v in arch.values())}


def test_non_dominated_sort_orders_fronts():
    costs = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [6, 6], [2, 2]], dtype=float)
    fronts = non_dominated_sort(costs)
    assert sorted(fronts[0]) == [0, 1, 2, 5]  # equal points do not dominate each other
    assert fronts[1] == [3] and fronts[2] == [4]


def test_crowding_distance_boundaries_infinite_and_interior_ordered():
    costs = np.array([[0, 4], [1, 3], [3, 1], [4, 0]], dtype=float)
    d = crowding_distance(costs)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(d[2]) and np.isfinite(d[1])


def test_search_returns_a_non_dominated_front_within_budget():
    board = ScoreBoard(tradeoff, Budget(max_evaluations=150))
    result = NSGA2Search(0, None, population=16, generations=12, mutation_prob=0.2).run(LARGE, board)
    assert len(board.history) <= 150
    front = result["pareto_front"]
    assert len(front) >= 3
    for a in front:
        for r in board.history:
            dominated = (r["accuracy"] >= a["accuracy"] and r["params"] <= a["params"]
                         and (r["accuracy"] > a["accuracy"] or r["params"] < a["params"]))
            assert not dominated
    params = [a["params"] for a in front]
    assert params == sorted(params)
    # Both ends of the trade-off are reached: the smallest architecture and a large accurate one.
    assert min(params) <= 2  # of 0 .. 36
    assert max(a["accuracy"] for a in front) >= 0.9 * 6 * GAIN["s"]


def test_search_is_deterministic_for_a_seed():
    runs = []
    for _ in range(2):
        board = ScoreBoard(tradeoff, Budget(max_evaluations=60))
        NSGA2Search(3, None, population=10, generations=5).run(LARGE, board)
        runs.append([r["arch"] for r in board.history])
    assert runs[0] == runs[1]


def test_constraint_is_respected():
    board = ScoreBoard(tradeoff, Budget(max_evaluations=80))
    NSGA2Search(0, lambda arch: tradeoff(arch)["params"] <= 10, population=10, generations=6).run(LARGE, board)
    assert board.history and all(r["params"] <= 10 for r in board.history)


def test_missing_objective_is_a_config_error():
    with pytest.raises(ConfigError, match="search.objectives"):
        pareto_front([{"accuracy": 1.0}], ["accuracy", "flops"])
