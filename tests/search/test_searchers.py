"""Tests of the searchers, their budget and constraints, on synthetic score functions."""
from __future__ import annotations

import itertools
import time

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.search.constraints import RangeConstraint
from nni_dynamic_supernet.search.run import build_searcher
from nni_dynamic_supernet.search.searchers import (Budget, EvolutionSearch, ExhaustiveSearch, RandomSearch,
                                                   ScoreBoard)

torch.set_num_threads(1)

SMALL = {"a": [0, 1, 2], "b": ["x", "y", "z"], "c": [0, 1, 2, 3]}  # 36 architectures
# 6 labels x 4 choices = 4096 architectures, for evolution.
LARGE = {f"l{i}": ["p", "q", "r", "s"] for i in range(6)}
WEIGHTS = {f"l{i}": {"p": 0.0, "q": 1.0 + 0.3 * i, "r": 2.6 + 0.4 * i, "s": 2.0} for i in range(6)}
OPTIMUM = {label: max(w, key=w.get) for label, w in WEIGHTS.items()}
assert all(sorted(w.values())[-1] > sorted(w.values())[-2] for w in WEIGHTS.values())  # a unique optimum


def separable(arch):
    return {"accuracy": sum(WEIGHTS[label][value] for label, value in arch.items())}


def small_score(arch):
    return {"accuracy": float(arch["a"] + 10 * ["x", "y", "z"].index(arch["b"]) + 100 * arch["c"])}


def _key(arch):
    return tuple(sorted(arch.items()))


def _evolution(seed=0, constraint=None, **kwargs):
    params = dict(population=20, generations=12, select_num=5, mutation_num=10, crossover_num=10,
                  mutation_prob=0.2)
    params.update(kwargs)
    return EvolutionSearch(seed, constraint, **params)


SEARCHERS = {
    "exhaustive": lambda constraint=None: ExhaustiveSearch(0, constraint),
    "random": lambda constraint=None: RandomSearch(0, constraint),
    "evolution": lambda constraint=None: _evolution(0, constraint, population=8, select_num=3, mutation_num=4,
                                                    crossover_num=4),
}


# ---------------------------------------------------------------------------------------------- budget
@pytest.mark.parametrize("name", list(SEARCHERS))
@pytest.mark.parametrize("limit", [1, 7, 20])
def test_evaluation_budget_respected(name, limit):
    calls = []

    def score(arch):
        calls.append(arch)
        return small_score(arch)

    board = ScoreBoard(score, Budget(max_evaluations=limit))
    SEARCHERS[name]().run(SMALL, board)
    assert len(calls) == len(board.history) <= limit
    if name in ("exhaustive", "random"):
        assert len(calls) == limit  # these fill the budget exactly on a 36-arch space
    assert len({_key(a) for a in calls}) == len(calls)  # never pays twice for one architecture


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_time_budget_respected(name):
    delay, limit = 0.02, 0.15

    starts = []

    def slow(arch):
        starts.append(time.monotonic())
        time.sleep(delay)
        return small_score(arch)

    board = ScoreBoard(slow, Budget(max_seconds=limit))
    SEARCHERS[name]().run(SMALL, board)
    assert 1 <= len(board.history) <= limit / delay + 1
    # Only the evaluation in flight runs past the limit: none starts after it (whatever the machine's load).
    assert max(starts) - board.budget.started < limit
    assert len(board.history) < 36


def test_budget_exhausted_logic():
    budget = Budget(max_evaluations=2)
    assert not budget.exhausted()
    budget.used = 2
    assert budget.exhausted()
    assert Budget(max_seconds=0.0).exhausted()
    assert not Budget().exhausted()


def test_scoreboard_caches_and_keeps_order():
    calls = []
    board = ScoreBoard(lambda a: calls.append(a) or small_score(a), Budget(max_evaluations=3))
    a = {"a": 0, "b": "x", "c": 0}
    b = {"a": 1, "b": "z", "c": 3}
    first = board.score(a)
    assert board.score(dict(reversed(list(a.items())))) is first  # label order does not matter
    board.score(b)
    assert len(calls) == 2 and board.budget.used == 2
    assert [r["arch"] for r in board.top(5)] == [b, a]
    board.score({"a": 2, "b": "x", "c": 0})
    assert board.score({"a": 2, "b": "y", "c": 0}) is None  # budget spent
    assert board.score(a) is first  # cached records are still served


# ---------------------------------------------------------------------------------------------- exhaustive
def test_exhaustive_enumerates_the_whole_space():
    board = ScoreBoard(small_score, Budget(max_evaluations=1000))
    out = ExhaustiveSearch(0).run(SMALL, board)
    assert out == {"complete": True}
    expected = {_key(dict(zip(SMALL, v))) for v in itertools.product(*SMALL.values())}
    assert {_key(r["arch"]) for r in board.history} == expected
    assert len(board.history) == 36
    assert board.top(1)[0]["arch"] == {"a": 2, "b": "z", "c": 3}


def test_exhaustive_incomplete_when_budget_ends():
    board = ScoreBoard(small_score, Budget(max_evaluations=10))
    assert ExhaustiveSearch(0).run(SMALL, board) == {"complete": False}


# ---------------------------------------------------------------------------------------------- evolution
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evolution_finds_global_optimum_of_separable_score(seed):
    board = ScoreBoard(separable, Budget(max_evaluations=300))
    out = _evolution(seed).run(LARGE, board)
    assert len(board.history) <= 300
    best = board.top(1)[0]
    assert best["arch"] == OPTIMUM
    assert best["accuracy"] == separable(OPTIMUM)["accuracy"]
    gens = out["generations"]
    assert len(gens) >= 2
    assert all(a["best"] <= b["best"] for a, b in zip(gens, gens[1:]))  # elitist: never gets worse


def test_evolution_beats_random_at_equal_budget():
    budget = 150
    evo = ScoreBoard(separable, Budget(max_evaluations=budget))
    _evolution(0).run(LARGE, evo)
    rnd = ScoreBoard(separable, Budget(max_evaluations=budget))
    RandomSearch(0).run(LARGE, rnd)
    assert evo.top(1)[0]["accuracy"] > rnd.top(1)[0]["accuracy"]


def test_evolution_is_deterministic_by_seed():
    runs = []
    for seed in (3, 3, 4):
        board = ScoreBoard(separable, Budget(max_evaluations=60))
        _evolution(seed).run(LARGE, board)
        runs.append([_key(r["arch"]) for r in board.history])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


# ---------------------------------------------------------------------------------------------- constraints
def _cost(arch):
    return float(sum("pqrs".index(v) for v in arch.values()))  # 0 .. 18


@pytest.mark.parametrize("name", ["random", "evolution", "exhaustive"])
def test_every_evaluated_arch_satisfies_the_constraint(name):
    constraint = RangeConstraint(_cost, 4, 7)
    factory = {"random": lambda: RandomSearch(0, constraint), "evolution": lambda: _evolution(0, constraint),
               "exhaustive": lambda: ExhaustiveSearch(0, constraint)}[name]
    board = ScoreBoard(separable, Budget(max_evaluations=120))
    factory().run(LARGE, board)
    assert len(board.history) > 10
    assert all(4 <= _cost(r["arch"]) <= 7 for r in board.history)


def test_constrained_evolution_finds_constrained_optimum():
    constraint = RangeConstraint(_cost, None, 6)
    legal = [dict(zip(LARGE, v)) for v in itertools.product(*LARGE.values())]
    best_legal = max(separable(a)["accuracy"] for a in legal if constraint(a))
    board = ScoreBoard(separable, Budget(max_evaluations=400))
    _evolution(0, constraint, generations=20).run(LARGE, board)
    assert board.top(1)[0]["accuracy"] == best_legal


@pytest.mark.parametrize("name", ["random", "evolution", "exhaustive"])
def test_impossible_constraint_is_config_error(name):
    # Inside the metric's bounds but met by no architecture (costs are integers).
    constraint = RangeConstraint(_cost, 4.2, 4.8)
    searcher = {"random": lambda: RandomSearch(0, constraint), "evolution": lambda: _evolution(0, constraint),
                "exhaustive": lambda: ExhaustiveSearch(0, constraint)}[name]()
    board = ScoreBoard(separable, Budget(max_evaluations=50))
    with pytest.raises(ConfigError) as info:
        searcher.run(LARGE, board)
    assert "constraint" in info.value.field
    assert board.history == []


def test_range_constraint_call():
    c = RangeConstraint(lambda a: a["v"], 2, 5)
    assert [c({"v": v}) for v in (1, 2, 3, 5, 6)] == [False, True, True, True, False]
    assert RangeConstraint(lambda a: a["v"], None, 5)({"v": -100})
    assert RangeConstraint(lambda a: a["v"], 2, None)({"v": 1e9})


def test_range_constraint_check_feasible():
    RangeConstraint(len, 10, 20).check_feasible((5, 50))
    RangeConstraint(len, None, 5).check_feasible((5, 50))  # touching the bound is feasible
    RangeConstraint(len, 50, None).check_feasible((5, 50))
    with pytest.raises(ConfigError) as info:
        RangeConstraint(len, None, 4, metric="params", field="search.constraint").check_feasible((5, 50))
    assert info.value.field == "search.constraint_max" and "params" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RangeConstraint(len, 51, None, metric="flops").check_feasible((5, 50))
    assert info.value.field == "search.constraint_min" and "flops" in str(info.value)


# ---------------------------------------------------------------------------------------------- from the recipe
@pytest.mark.parametrize("name,cls", [("evolution", EvolutionSearch), ("random", RandomSearch),
                                      ("exhaustive", ExhaustiveSearch)])
def test_build_searcher(name, cls):
    recipe = Recipe.from_dict({}, {"search.searcher": name, "search.population": 12, "search.select_num": 4})
    searcher = build_searcher(recipe.search, None, seed=recipe.seed)
    assert isinstance(searcher, cls) and searcher.name == name
    if cls is EvolutionSearch:
        assert searcher.population == 12 and searcher.select_num == 4


def test_search_supernet_end_to_end_with_constraint():
    """The search stage on a real tiny supernet: parameter constraint, budget, records."""
    import copy

    from nni_dynamic_supernet.registry import create_space
    from nni_dynamic_supernet.search.run import SearchContext, search_supernet
    from nni_dynamic_supernet.spaces.measures import complexity_model_for
    from nni_dynamic_supernet.supernet import mutate_to_supernet
    from nni_dynamic_supernet.training.build import partition_for

    torch.manual_seed(0)
    pristine = create_space("nas_bench_201", channels=2, cells_per_stage=1, num_classes=3, in_channels=1,
                            input_size=8)
    supernet = mutate_to_supernet(copy.deepcopy(pristine))
    cm = complexity_model_for(pristine)
    lo, hi = cm.bounds("params")
    limit = lo + (hi - lo) / 3
    recipe = Recipe.from_dict({}, {"search.searcher": "random", "search.max_evaluations": 5,
                                   "search.constraint_max": limit, "search.bn_batches": 1, "search.top_k": 3})
    partition = partition_for(recipe.training, supernet, seed=recipe.seed)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(2)]
    result = search_supernet(SearchContext(recipe.search, [supernet], partition, data, data, seed=recipe.seed,
                                           pristine_space=pristine))
    assert result.moved_models == []
    found = result.report
    assert found["evaluations"] == 5 and len(found["history"]) == 5
    assert len(found["top"]) == 3
    assert all(r["params"] <= limit for r in found["history"])
    assert all(r["params"] == cm.params(r["arch"]) for r in found["history"])
    accs = [r["accuracy"] for r in found["top"]]
    assert accs == sorted(accs, reverse=True)
    with pytest.raises(ConfigError) as info:
        search_supernet(SearchContext(recipe.replace(**{"search.constraint_max": lo - 1}).search, [supernet],
                                      partition, data, data, seed=recipe.seed, pristine_space=pristine))
    assert info.value.field == "search.constraint_max"
