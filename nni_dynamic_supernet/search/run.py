"""The search stage: evaluator + searcher + constraint, assembled from the recipe's ``search`` section and seed."""
from __future__ import annotations

import copy
import logging
import time
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..recipe import SearchConfig, TrainingConfig
from .constraints import RangeConstraint
from .evaluate import SubnetEvaluator, take_batches
from .nsga2 import NSGA2Search
from .searchers import Budget, EvolutionSearch, ExhaustiveSearch, RandomSearch, ScoreBoard, Searcher
from .shifting import ShiftedEvolution, SupernetShifter

_logger = logging.getLogger(__name__)

__all__ = ["build_evaluator", "build_searcher", "build_shifter", "build_constraint", "search_supernet"]


def build_evaluator(search: SearchConfig, models: Sequence[nn.Module], partition: Any, calib_loader: Iterable,
                    val_loader: Iterable, device: torch.device | str = "cpu") -> SubnetEvaluator:
    """A :class:`SubnetEvaluator` with the ``search.bn_mode`` policy on fixed calibration and validation batches."""
    from ..supernet.modules import arch_setter
    calib = take_batches(calib_loader, search.bn_batches, device) if search.bn_mode == "recalibrate" else []
    val = take_batches(val_loader, 10 ** 9, device)
    return SubnetEvaluator(models, [arch_setter(m) for m in models], partition.route, val, calib, search.bn_mode)


def build_shifter(search: SearchConfig, evaluator: SubnetEvaluator, train_set: Any,
                  device: torch.device | str = "cpu", *, seed: int) -> SupernetShifter:
    """The :class:`SupernetShifter` of ``search`` on the evaluator's supernets (a transferred head gets its own LR)."""
    from ..training.transfer import head_parameters
    head = [p for m in evaluator.models for p in head_parameters(m)] if search.transfer_to is not None else []
    return SupernetShifter(evaluator.models, evaluator.set_arch, evaluator.route, train_set, lr=search.shift_lr,
                           momentum=search.shift_momentum, weight_decay=search.shift_weight_decay,
                           iters=search.shift_iters, batch_size=search.shift_batch_size, update=search.shift_update,
                           label_smoothing=search.shift_label_smoothing, seed=seed + 7, device=device,
                           bn_from_shift=search.shift_bn == "shift",
                           head=head, head_lr=search.transfer_head_lr)


def build_searcher(search: SearchConfig, constraint: Optional[RangeConstraint],
                   shifter: Optional[SupernetShifter] = None, *, seed: int) -> Searcher:
    """The searcher ``search.searcher`` (``shifted_evolution`` needs the ``shifter`` that trains the supernet)."""
    seed = seed + 1
    if search.searcher == "exhaustive":
        return ExhaustiveSearch(seed, constraint)
    if search.searcher == "random":
        return RandomSearch(seed, constraint)
    if search.searcher == "evolution":
        return EvolutionSearch(seed, constraint, search.population, search.generations, search.select_num,
                               search.mutation_num, search.crossover_num, search.mutation_prob)
    if search.searcher == "shifted_evolution":
        if shifter is None:
            raise ConfigError("search.searcher", search.searcher, "needs a supernet and training data; run it through "
                              "search_supernet or nds search")
        return ShiftedEvolution(shifter, seed, constraint, search.population, search.generations, search.select_num,
                                search.mutation_num, search.crossover_num, search.mutation_prob,
                                order=search.shift_order, reevaluate_parents=search.shift_reevaluate_parents,
                                final_reevaluate=max(search.shift_final_reevaluate, 0))
    if search.searcher == "nsga2":
        return NSGA2Search(seed, constraint, search.population, search.generations, search.mutation_prob,
                           search.objectives)
    raise ConfigError("search.searcher", search.searcher,
                      "allowed: evolution, shifted_evolution, nsga2, random, exhaustive")


def _complexity(pristine_space: Optional[nn.Module]) -> Any:
    from ..training.build import complexity_model_for
    try:
        return complexity_model_for(pristine_space) if pristine_space is not None else None
    except Exception as exc:  # counting is a nicety for results unless a constraint needs it
        _logger.warning("parameter/FLOPs counting unavailable: %s", exc)
        return None


def build_constraint(search: SearchConfig, complexity: Any) -> Optional[RangeConstraint]:
    """The search's params/FLOPs range, checked against the space's bounds (``None`` without limits).

    Runs before training too (:func:`nni_dynamic_supernet.pipeline.run_recipe`), so an
    impossible constraint stops the run before any compute is spent.
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
    from ..training.build import validity_check
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


def search_supernet(search: SearchConfig, models: Sequence[nn.Module], partition: Any, calib_loader: Iterable,
                    val_loader: Iterable, pristine_space: Optional[nn.Module], device: torch.device | str = "cpu",
                    evaluator: Optional[SubnetEvaluator] = None, train_set: Any = None,
                    tracked: Optional[Sequence[dict]] = None, shifted_models: Optional[list] = None,
                    progress: Optional[bool] = None, *, seed: int,
                    training: Optional[TrainingConfig] = None) -> dict:
    """Run the searcher of ``search`` on a trained supernet.

    Returns a dict with ``top`` (best records, best first: arch, accuracy, loss, params,
    flops), ``history``, ``evaluations``, ``seconds``, ``searcher``, ``bn`` and the
    searcher's own diagnostics.

    ``shifted_evolution`` fine-tunes deep copies of ``models`` (the caller's supernet is
    left as trained) on ``train_set``; the moved copies are appended to ``shifted_models``
    when given. ``tracked`` (dicts with ``arch``, ``group`` and optionally
    ``true_accuracy``) are re-scored before the search and after every generation, off the
    budget and off ``seconds`` (paper Fig. 3). ``progress`` shows a bar of the evaluations
    (``None``: when interactive, never in an nnictl trial). ``seed`` is the recipe's seed;
    ``training`` (its ``lr``, ``momentum`` and ``weight_decay``) trains the stand-alone
    subnets of ``search.leaf_selection: successive_halving``.
    """
    from ..progress import ProgressLog, progress_bar
    space = partition.space
    complexity = _complexity(pristine_space)
    constraint = _with_validity(build_constraint(search, complexity), pristine_space)
    if search.searcher == "nsga2" and complexity is None:
        raise ConfigError("search.objectives", search.objectives, "needs parameter/FLOPs counting of the space")
    shifter = None
    if search.searcher == "shifted_evolution":
        if train_set is None:
            raise ConfigError("search.searcher", search.searcher, "needs the training split to shift the supernet on")
        from ..supernet.modules import arch_setter
        # Shift copies: the trained supernet stays as it was for ranking and for other searches.
        models = [copy.deepcopy(m) for m in models]
        if evaluator is not None:
            evaluator = SubnetEvaluator(models, [arch_setter(m) for m in models], partition.route,
                                        evaluator.val_batches, evaluator.calib_batches, evaluator.bn_mode)
        else:
            evaluator = build_evaluator(search, models, partition, calib_loader, val_loader, device)
        shifter = build_shifter(search, evaluator, train_set, device, seed=seed)
        if shifter.bn_from_shift:
            evaluator.calibrator = shifter.calibrate  # the candidates' shifting passes are their recalibration
    elif evaluator is None:
        evaluator = build_evaluator(search, models, partition, calib_loader, val_loader, device)

    bar = progress_bar(desc="search", total=search.max_evaluations, unit="arch", enabled=progress)
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
    searcher = build_searcher(search, constraint, shifter, seed=seed)
    tracker = _Tracker(evaluator, tracked or [])

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
        diagnostics = searcher.run(space, board)
    finally:
        bar.close()
    lines.close()
    seconds = time.monotonic() - started - tracker.seconds
    if not board.history:
        raise ConfigError("search.max_seconds", search.max_seconds,
                          "the search budget ended before the first evaluation; raise it")
    if tracker.archs:
        diagnostics["tracked"] = tracker.summary()
    if shifted_models is not None and shifter is not None:
        shifted_models.extend(evaluator.models)
    top = board.top(search.top_k)
    out = {"searcher": searcher.name, "top": top, "history": board.history, "evaluations": len(board.history),
           "seconds": seconds, "bn": evaluator.policy, "diagnostics": diagnostics}
    if partition.num_leaves > 1:
        from .leaf_selection import select_across_leaves, standalone_accuracy
        train_fn = None
        if search.leaf_selection == "successive_halving":
            if pristine_space is None or training is None:
                raise ConfigError("search.leaf_selection", search.leaf_selection, "needs the un-mutated space and the "
                                  "training section (its lr, momentum and weight_decay)")
            train_batches = take_batches(calib_loader, 10 ** 9, device)
            # Read now: the closure would not see that training is not None.
            lr, momentum, weight_decay = training.lr, training.momentum, training.weight_decay

            def train_fn(arch: dict, epochs: int) -> float:
                return standalone_accuracy(pristine_space, arch, train_batches, evaluator.val_batches, epochs,
                                           lr, momentum, weight_decay, seed)

        latest = list(board.cache.values())  # shifted search: the latest score of each architecture
        out["top"], out["leaf_selection"] = select_across_leaves(search, partition, latest, score, train_fn, seed=seed)
    return out


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
            from ..ranking import kendall_tau
            truth = [self.archs[i]["true_accuracy"] for i in top]
            out["top_kendall_tau"] = [float(kendall_tau([self.accuracy[i][g] for i in top], truth))
                                      for g in range(len(self.generations))]
        return out
