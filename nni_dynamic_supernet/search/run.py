"""The search stage: evaluator + searcher + constraint, assembled from the recipe."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Optional, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..recipe import Recipe
from .constraints import RangeConstraint
from .evaluate import SubnetEvaluator, take_batches
from .searchers import Budget, EvolutionSearch, ExhaustiveSearch, RandomSearch, ScoreBoard, Searcher

_logger = logging.getLogger(__name__)

__all__ = ["build_evaluator", "build_searcher", "build_constraint", "search_supernet"]


def build_evaluator(recipe: Recipe, models: Sequence[nn.Module], partition: Any, calib_loader: Iterable,
                    val_loader: Iterable, device: torch.device | str = "cpu") -> SubnetEvaluator:
    """A :class:`SubnetEvaluator` with the recipe's BN policy on fixed calibration and validation batches."""
    from ..nni_bridge import arch_setter
    s = recipe.search
    calib = take_batches(calib_loader, s.bn_batches, device) if s.bn_mode == "recalibrate" else []
    val = take_batches(val_loader, 10 ** 9, device)
    return SubnetEvaluator(models, [arch_setter(m) for m in models], partition.route, val, calib, s.bn_mode)


def build_searcher(recipe: Recipe, constraint: Optional[RangeConstraint]) -> Searcher:
    """The recipe's searcher."""
    s = recipe.search
    seed = recipe.seed + 1
    if s.searcher == "exhaustive":
        return ExhaustiveSearch(seed, constraint)
    if s.searcher == "random":
        return RandomSearch(seed, constraint)
    if s.searcher == "evolution":
        return EvolutionSearch(seed, constraint, s.population, s.generations, s.select_num, s.mutation_num,
                               s.crossover_num, s.mutation_prob)
    raise ConfigError("search.searcher", s.searcher, "not available yet; allowed: evolution, random, exhaustive")


def _complexity(pristine_space: Optional[nn.Module]) -> Any:
    from ..training.build import complexity_model_for
    try:
        return complexity_model_for(pristine_space) if pristine_space is not None else None
    except Exception as exc:  # counting is a nicety for results unless a constraint needs it
        _logger.warning("parameter/FLOPs counting unavailable: %s", exc)
        return None


def build_constraint(recipe: Recipe, complexity: Any) -> Optional[RangeConstraint]:
    """The search's params/FLOPs range, checked against the space's bounds (``None`` without limits).

    Runs before training too (:func:`nni_dynamic_supernet.pipeline.run_recipe`), so an
    impossible constraint stops the run before any compute is spent.
    """
    s = recipe.search
    if s.constraint_min is None and s.constraint_max is None:
        return None
    if complexity is None:
        raise ConfigError("search.constraint_max", s.constraint_max, "needs parameter/FLOPs counting of the space")
    fn = complexity.params if s.constraint_metric == "params" else complexity.flops
    constraint = RangeConstraint(fn, s.constraint_min, s.constraint_max, s.constraint_metric)
    constraint.check_feasible(complexity.bounds(s.constraint_metric))
    return constraint


def check_search_feasible(recipe: Recipe, pristine_space: Optional[nn.Module]) -> None:
    """Raise the constraint's ConfigError now if the recipe's search could never succeed."""
    if recipe.search.constraint_min is not None or recipe.search.constraint_max is not None:
        build_constraint(recipe, _complexity(pristine_space))


def search_supernet(recipe: Recipe, models: Sequence[nn.Module], partition: Any, calib_loader: Iterable,
                    val_loader: Iterable, pristine_space: Optional[nn.Module], device: torch.device | str = "cpu",
                    evaluator: Optional[SubnetEvaluator] = None, progress: Optional[bool] = None) -> dict:
    """Run the recipe's searcher on a trained supernet.

    Returns a dict with ``top`` (best records, best first: arch, accuracy, loss, params,
    flops), ``history``, ``evaluations``, ``seconds``, ``searcher``, ``bn`` and the
    searcher's own diagnostics. ``progress`` shows a bar of the evaluations (``None``:
    when interactive, never in an nnictl trial).
    """
    from ..progress import progress_bar
    s = recipe.search
    space = partition.space
    complexity = _complexity(pristine_space)
    constraint = build_constraint(recipe, complexity)
    if evaluator is None:
        evaluator = build_evaluator(recipe, models, partition, calib_loader, val_loader, device)

    bar = progress_bar(desc="search", total=s.max_evaluations, unit="arch", enabled=progress)

    def score(arch: dict) -> dict:
        bar.update(1)
        out = evaluator.evaluate(arch)
        if complexity is not None:
            out["params"] = int(complexity.params(arch))
            out["flops"] = int(complexity.flops(arch))
        return out

    board = ScoreBoard(score, Budget(s.max_evaluations, s.max_seconds))
    searcher = build_searcher(recipe, constraint)
    started = time.monotonic()
    try:
        diagnostics = searcher.run(space, board)
    finally:
        bar.close()
    if not board.history:
        raise ConfigError("search.max_seconds", s.max_seconds,
                          "the search budget ended before the first evaluation; raise it")
    return {"searcher": searcher.name, "top": board.top(s.top_k), "history": board.history,
            "evaluations": len(board.history), "seconds": time.monotonic() - started, "bn": evaluator.policy,
            "diagnostics": diagnostics}
