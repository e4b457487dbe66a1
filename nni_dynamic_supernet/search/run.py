"""The search stage: the recipe's searcher, under its budget and constraint, over a trained supernet.

:func:`search_supernet` takes a :class:`~.context.SearchContext` and returns a
:class:`SearchResult`. The searcher is looked up in the registry
(:data:`~nni_dynamic_supernet.components.SEARCHERS`); a searcher that sets up its own evaluation
(supernet shifting moves copies of the supernet) does so in its ``prepare`` hook.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch.nn as nn

from ..components import SEARCHERS
from ..errors import ConfigError
from ..progress import ProgressLog, progress_bar
from ..ranking.metrics import kendall_tau
from ..recipe import SearchConfig
from ..spaces.measures import complexity_model_for, validity_check
from .constraints import RangeConstraint
from .context import SearchContext, SearchSession
from .evaluate import SubnetEvaluator, build_evaluator, take_batches
from .leaf_selection import select_across_leaves, standalone_accuracy
from .searchers import Budget, ScoreBoard, Searcher

_logger = logging.getLogger(__name__)

__all__ = ["SearchContext", "SearchResult", "build_evaluator", "build_searcher", "build_constraint",
           "check_search_feasible", "search_supernet"]


@dataclass
class SearchResult:
    """What a search returns.

    Attributes
    ----------
    report
        ``top`` (best records, best first: arch, accuracy, loss, params, flops), ``history``,
        ``evaluations``, ``seconds``, ``searcher``, ``bn``, the searcher's ``diagnostics`` and,
        with several sub-supernets, ``leaf_selection``.
    moved_models
        The supernet copies a shifting searcher moved (empty otherwise); the searched
        supernet itself is never changed.
    """

    report: dict
    moved_models: list = field(default_factory=list)


def build_searcher(search: SearchConfig, constraint: Optional[Callable[[dict], bool]], shifter: Any = None, *,
                   seed: int) -> Searcher:
    """The searcher ``search.searcher`` (``shifted_evolution`` needs the ``shifter`` that trains the supernet).

    Parameters
    ----------
    search
        The recipe's ``search`` section.
    constraint
        ``arch -> bool``, or ``None``.
    shifter
        The supernet shifter of a shifting searcher.
    seed
        The recipe's seed (the searcher draws from ``seed + 1``).

    Returns
    -------
    Searcher
    """
    entry = SEARCHERS.get(search.searcher)
    return entry.build(entry.options_from(search), SearchSession(constraint, seed + 1, shifter=shifter))


def _complexity(pristine_space: Optional[nn.Module]) -> Any:
    try:
        return complexity_model_for(pristine_space) if pristine_space is not None else None
    except Exception as exc:  # counting is a nicety for results unless a constraint needs it
        _logger.warning("parameter/FLOPs counting unavailable: %s", exc)
        return None


def build_constraint(search: SearchConfig, complexity: Any) -> Optional[RangeConstraint]:
    """The search's params/FLOPs range, checked against the space's bounds (``None`` without limits).

    Runs before training too (:func:`check_search_feasible`), so an impossible constraint stops
    the run before any compute is spent.

    Parameters
    ----------
    search
        The recipe's ``search`` section.
    complexity
        The space's complexity model, or ``None``.

    Returns
    -------
    RangeConstraint or None
    """
    if search.constraint_min is None and search.constraint_max is None:
        return None
    if complexity is None:
        raise ConfigError("search.constraint_max", search.constraint_max, "needs parameter/FLOPs counting of the space")
    fn = complexity.params if search.constraint_metric == "params" else complexity.flops
    constraint = RangeConstraint(fn, search.constraint_min, search.constraint_max, search.constraint_metric)
    constraint.check_feasible(complexity.bounds(search.constraint_metric))
    return constraint


def _with_validity(constraint: Optional[Callable[[dict], bool]],
                   pristine_space: Optional[nn.Module]) -> Optional[Callable[[dict], bool]]:
    """``constraint`` that also rejects architectures outside the space's own constraints (NAS-Bench-101)."""
    valid = validity_check(pristine_space)
    if valid is None:
        return constraint
    if constraint is None:
        return valid
    return lambda arch: valid(arch) and constraint(arch)


def check_search_feasible(search: SearchConfig, pristine_space: Optional[nn.Module]) -> None:
    """Raise the constraint's ConfigError now if the search could never succeed."""
    if search.constraint_min is not None or search.constraint_max is not None:
        build_constraint(search, _complexity(pristine_space))


def search_supernet(context: SearchContext) -> SearchResult:
    """Run the searcher of ``context.search`` on a trained supernet.

    A shifting searcher fine-tunes deep copies of the supernet (the context's supernet is left
    as trained); they come back as :attr:`SearchResult.moved_models`. Tracked architectures are
    re-scored before the search and after every generation, off the budget and off ``seconds``
    (the Supernet Shifting paper's Fig. 3). With several sub-supernets the final architecture is
    chosen across leaves (``search.leaf_selection``).

    Parameters
    ----------
    context
        The search's inputs.

    Returns
    -------
    SearchResult
    """
    search, partition = context.search, context.partition
    complexity = _complexity(context.pristine_space)
    session = SearchSession(_with_validity(build_constraint(search, complexity), context.pristine_space),
                            context.seed + 1, context=context, complexity=complexity, evaluator=context.evaluator)
    entry = SEARCHERS.get(search.searcher)
    options = entry.options_from(search)
    prepare = entry.hooks.get("prepare")
    if prepare is not None:
        prepare(options, session)
    if session.evaluator is None:
        session.evaluator = build_evaluator(search, context.models, partition, context.calib_loader,
                                            context.val_loader, context.device)
    evaluator = session.evaluator

    bar = progress_bar(desc="search", total=search.max_evaluations, unit="arch", enabled=context.progress)
    # Without a bar (an nnictl trial), one log line per generation and at least one every LOG_INTERVAL_S.
    lines = ProgressLog("search", search.max_evaluations, enabled=bar.disable)
    lines.line(f"{search.searcher}, at most {search.max_evaluations} evaluations")

    def score(arch: dict) -> dict:
        bar.update(1)
        lines.update(1)
        out = evaluator.evaluate(arch)
        if complexity is not None:
            out["params"] = int(complexity.params(arch))
            out["flops"] = int(complexity.flops(arch))
        return out

    board = ScoreBoard(score, Budget(search.max_evaluations, search.max_seconds))
    searcher = entry.build(options, session)
    tracker = _Tracker(evaluator, context.tracked)

    def on_generation_end(generation: int) -> None:
        best = max((r["accuracy"] for r in board.history), default=float("nan"))
        lines.line(f"generation {generation + 1}/{search.generations}  evaluations={len(board.history)}"
                   f"/{search.max_evaluations}  best={best:.2f}%")
        if tracker.archs:
            tracker.record(generation)

    if hasattr(searcher, "on_generation_end"):
        searcher.on_generation_end = on_generation_end
    tracker.record(-1)
    started = time.monotonic()
    board.budget.started = started  # a time budget counts from here, not from building the evaluator
    try:
        diagnostics = searcher.run(partition.space, board)
    finally:
        bar.close()
    lines.close()
    seconds = time.monotonic() - started - tracker.seconds
    if not board.history:
        raise ConfigError("search.max_seconds", search.max_seconds,
                          "the search budget ended before the first evaluation; raise it")
    if tracker.archs:
        diagnostics["tracked"] = tracker.summary()
    report = {"searcher": searcher.name, "top": board.top(search.top_k), "history": board.history,
              "evaluations": len(board.history), "seconds": seconds, "bn": evaluator.policy,
              "diagnostics": diagnostics}
    if partition.num_leaves > 1:
        latest = list(board.cache.values())  # shifted search: the latest score of each architecture
        report["top"], report["leaf_selection"] = select_across_leaves(search, partition, latest, score,
                                                                       _standalone_trainer(context, evaluator),
                                                                       seed=context.seed)
    return SearchResult(report, list(session.moved_models))


def _standalone_trainer(context: SearchContext, evaluator: SubnetEvaluator) -> Optional[Callable[[dict, int], float]]:
    """``train(arch, epochs) -> accuracy`` for ``search.leaf_selection: successive_halving``, else ``None``."""
    if context.search.leaf_selection != "successive_halving":
        return None
    pristine, training, seed = context.pristine_space, context.training, context.seed
    if pristine is None or training is None:
        raise ConfigError("search.leaf_selection", context.search.leaf_selection, "needs the un-mutated space and "
                          "the training section (its lr, momentum and weight_decay)")
    train_batches = take_batches(context.calib_loader, 10 ** 9, context.device)
    lr, momentum, weight_decay = training.lr, training.momentum, training.weight_decay

    def train(arch: dict, epochs: int) -> float:
        return standalone_accuracy(pristine, arch, train_batches, evaluator.val_batches, epochs, lr, momentum,
                                   weight_decay, seed)

    return train


class _Tracker:
    """Scores a fixed set of architectures after every generation, to show how the supernet moves."""

    def __init__(self, evaluator: SubnetEvaluator, archs: Sequence[dict]) -> None:
        self.evaluator = evaluator
        self.archs = list(archs)
        self.generations: list[int] = []
        self.accuracy: list[list[float]] = [[] for _ in self.archs]
        self.seconds = 0.0

    def record(self, generation: int) -> None:
        if not self.archs:
            return
        started = time.monotonic()
        self.generations.append(generation)
        for row, item in zip(self.accuracy, self.archs):
            row.append(float(self.evaluator.evaluate(item["arch"])["accuracy"]))
        self.seconds += time.monotonic() - started

    def summary(self) -> dict:
        out: dict = {"generations": self.generations, "archs": [
            {**item, "error": [100.0 - a for a in row]} for item, row in zip(self.archs, self.accuracy)]}
        top = [i for i, item in enumerate(self.archs) if item.get("group") == "top" and "true_accuracy" in item]
        if len(top) >= 3:
            truth = [self.archs[i]["true_accuracy"] for i in top]
            out["top_kendall_tau"] = [float(kendall_tau([self.accuracy[i][g] for i in top], truth))
                                      for g in range(len(self.generations))]
        return out
