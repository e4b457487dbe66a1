"""Supernet Shifting: the evolutionary search also fine-tunes the supernet on what it samples.

A uniformly trained supernet separates good from bad subnets but orders the top ones
poorly. The evolutionary search samples good subnets more often, so training the
supernet on each sampled candidate "shifts" it towards the top region while the search
runs (Zhang et al., CVPR 2024). Two pieces:

* :class:`SupernetShifter` owns the fine-tuning: its own SGD optimizer (lr 1e-4,
  momentum 0.9, weight decay 4e-5, none on 1-D tensors), its own seeded batch stream,
  ``iters`` batches per candidate, and one of two update modes: ``per_generation`` (the
  paper: accumulate every candidate's gradient, step once per generation) or
  ``per_candidate`` (the official code: step after every batch).
* :class:`ShiftedEvolution` is the SPOS evolutionary search with a shifting hook per
  candidate, ``evaluate_first`` (paper) or ``train_first`` (code) order, optional
  re-evaluation of the parents each generation (``reevaluate_parents``; neither the paper
  nor the code does it, so it is off by default), and a final re-evaluation of the top
  architectures on the final supernet (scores taken at different times are not comparable).

BN statistics. By default (``bn_from_shift``, recipe ``search.shift_bn: shift``) a
candidate's train-mode shifting passes *are* its BN recalibration, as in the official
tester, which trains the candidate in train mode and then tests it with the statistics
those passes left: the evaluator resets the candidate's BN statistics, the shifter runs
its passes (and, with ``per_candidate``, its steps), the evaluator scores, and the
statistics are put back. No separate recalibration is paid, so shifting costs little more
than plain evolution. With ``search.shift_bn: recalibrate`` every score recalibrates on the
evaluator's own batches instead, and the shifting passes leave BN as they found it.

Guarantees the tests check: with ``lr = 0`` the search is exactly plain evolution whose
recalibration passes are the shifting batches (the shifter never draws from the searcher's
RNG and only a step that can move the weights makes cached scores stale); with ``lr > 0``
only tensors on sampled paths change (zero gradients are dropped to ``None`` before the
step, so momentum and weight decay never touch an op no candidate used).

Registered as ``search.searcher: shifted_evolution``, with its options (the ``search.shift_*``
fields and the transfer to a new dataset, ``search.transfer_to``).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..arch import arch_key
from ..components import SEARCHERS
from ..errors import ConfigError
from ..recipe import check_label_map
from .context import SearchSession
from .evaluate import build_evaluator, evaluator_over
from .searchers import EvolutionOptions, EvolutionSearch, ScoreBoard
from .shifter import SupernetShifter, build_shifter, shifting_optimizer

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe

__all__ = ["SupernetShifter", "ShiftedEvolution", "shifting_optimizer", "ShiftedEvolutionOptions", "build_shifter"]


class _GenerationSeen:
    """The no-repeat set of one generation of shifted evolution.

    A child is a repeat when it was generated in this generation or already has a score on
    the current weights. Once the supernet moved, an architecture from an earlier generation
    may be sampled (and scored) again, the latest score replacing the old one (as in the
    Supernet Shifting paper);
    while the weights stand still (lr 0) this is exactly the SPOS rule.
    """

    def __init__(self, board: ScoreBoard) -> None:
        self.board = board
        self.local: set = set()

    def __contains__(self, key: str) -> bool:
        if key in self.local:
            return True
        record = self.board.cache.get(key)
        return record is not None and record["version"] == self.board.version

    def add(self, key: str) -> None:
        self.local.add(key)


class ShiftedEvolution(EvolutionSearch):
    """SPOS evolution that fine-tunes the supernet on every candidate it samples (Supernet Shifting).

    Parameters are those of :class:`~.searchers.EvolutionSearch` plus:

    shifter
        The :class:`SupernetShifter` that trains the supernet the board's scores come from.
    order
        ``'evaluate_first'`` (paper: score, then take the gradient) or ``'train_first'``
        (code: fine-tune on the candidate, then score it; needs ``per_candidate`` updates).
    reevaluate_parents
        Re-score the parents at the start of each generation once the weights moved, so
        they compete with the new candidates on the same weights (an option: the paper and
        the official code keep the parents' old scores, and re-scoring spends evaluations
        of the budget on architectures already seen).
    final_reevaluate
        How many of the best architectures are re-scored on the final supernet. That many
        evaluations of the budget are held back for it while the supernet can move.
    """

    name = "shifted_evolution"

    def __init__(self, shifter: SupernetShifter, seed: int = 0, constraint: Optional[Callable[[dict], bool]] = None,
                 population: int = 50, generations: int = 20, select_num: int = 10, mutation_num: int = 25,
                 crossover_num: int = 25, mutation_prob: float = 0.1, order: str = "evaluate_first",
                 reevaluate_parents: bool = False, final_reevaluate: int = 10) -> None:
        super().__init__(seed, constraint, population, generations, select_num, mutation_num, crossover_num,
                         mutation_prob)
        if order not in ("evaluate_first", "train_first"):
            raise ConfigError("search.shift_order", order, "allowed values: evaluate_first, train_first")
        if order == "train_first" and shifter.update != "per_candidate":
            raise ConfigError("search.shift_order", order, "train_first needs search.shift_update: per_candidate")
        self.shifter = shifter
        self.order = order
        self.reevaluate_parents = reevaluate_parents
        self.final_reevaluate = final_reevaluate
        self.reevaluations = 0
        self._reserved = 0

    def new_seen(self, board: ScoreBoard) -> Any:
        """The no-repeat set: architectures scored on the current weights (a stale score may be paid again)."""
        return _GenerationSeen(board)

    def next_seen(self, seen: Any, board: ScoreBoard) -> Any:
        """A fresh no-repeat set for the next generation (the weights have moved)."""
        return _GenerationSeen(board)

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """The evolution, with the final re-evaluation's evaluations held back from its budget."""
        budget = board.budget
        # Hold back the final re-evaluation from the evolution's share of an evaluation budget.
        if self.shifter.can_move and budget.max_evaluations is not None:
            self._reserved = min(self.final_reevaluate, max(budget.max_evaluations - 1, 0))
            budget.max_evaluations -= self._reserved
        try:
            return super().run(space, board)
        finally:
            if budget.max_evaluations is not None:
                budget.max_evaluations += self._reserved
                self._reserved = 0

    def refresh_parents(self, parents: list[dict], board: ScoreBoard) -> list[dict]:
        """Re-score the parents on the moved weights when reevaluate_parents is on."""
        if not self.reevaluate_parents:
            return parents
        out = []
        for record in parents:
            if record["version"] != board.version:
                fresh = board.rescore(record["arch"])
                if fresh is not None:
                    self.reevaluations += 1
                    record = fresh
            out.append(record)
        return out

    def evaluate_generation(self, candidates: list[dict], board: ScoreBoard, generation: int) -> list[dict]:
        """Score the candidates and shift the supernet on them, in the configured order."""
        if self.shifter.bn_from_shift:
            return self._evaluate_with_shift_bn(candidates, board)
        records = []
        for arch in candidates:
            if board.budget.exhausted():
                break
            if self.order == "train_first":
                self.shifter.train_candidate(arch)
                board.version = self.shifter.version
            stale = arch_key(arch) in board.cache
            record = board.rescore(arch)
            if record is None:
                break
            self.reevaluations += int(stale)
            if self.order == "evaluate_first":
                self.shifter.train_candidate(arch)
                board.version = self.shifter.version
            records.append(record)
        self.shifter.end_generation()
        board.version = self.shifter.version
        return records

    def _evaluate_with_shift_bn(self, candidates: list[dict], board: ScoreBoard) -> list[dict]:
        """The official order: each candidate's shifting passes run inside its scoring, as its BN recalibration.

        With ``per_generation`` the weights the score sees are those before this generation's
        step (``evaluate_first``); with ``per_candidate`` they are those after the
        candidate's own steps (``train_first``), and the record carries the new version.
        """
        records = []
        for arch in candidates:
            if board.budget.exhausted():
                break
            stale = arch_key(arch) in board.cache
            self.shifter.arm()
            record = board.rescore(arch)
            if self.shifter.disarm() and record is not None:
                self.shifter.train_candidate(arch)  # scored without recalibration (bn_mode inherit): shift after
            if record is None:
                break
            self.reevaluations += int(stale)
            board.version = record["version"] = self.shifter.version
            records.append(record)
        self.shifter.end_generation()
        board.version = self.shifter.version
        return records

    def finish(self, board: ScoreBoard) -> dict:
        # Restore the held-back budget first: the final re-evaluation is what it was kept for.
        """Re-score the best architectures on the final supernet; return the shifting diagnostics."""
        if board.budget.max_evaluations is not None:
            board.budget.max_evaluations += self._reserved
            self._reserved = 0
        # Re-score the best architectures on the final weights until the top is all fresh: a
        # re-scored one may drop below a stale one, which is then re-scored in turn (bounded).
        by_latest = lambda: sorted(board.cache.values(), key=lambda r: -r["accuracy"])  # noqa: E731
        final = 0
        for _ in range(3 * self.final_reevaluate):
            stale = [r for r in by_latest()[: self.final_reevaluate] if r["version"] != board.version]
            if not stale or board.rescore(stale[0]["arch"]) is None:
                break
            final += 1
        return {"shift": {**self.shifter.summary(), "order": self.order, "reevaluations": self.reevaluations,
                          "final_reevaluated": final, "final_version": board.version}}


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class ShiftedEvolutionOptions(EvolutionOptions):
    """Options of supernet shifting (``search.shift_*``) and of the transfer to a new dataset (``transfer_to``)."""

    shift_lr: float = 1e-4
    shift_momentum: float = 0.9
    shift_weight_decay: float = 4e-5
    shift_iters: int = 20
    shift_batch_size: int = 32
    shift_update: str = "per_generation"
    shift_order: str = "evaluate_first"
    shift_label_smoothing: float = 0.1
    shift_reevaluate_parents: bool = False
    shift_bn: str = "shift"
    shift_final_reevaluate: int = 10
    save_shifted: bool = True
    transfer_to: Optional[dict] = None
    freeze_features: bool = False
    transfer_head_lr: Optional[float] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("shift_iters", "shift_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"search.{name}", getattr(self, name), "must be a positive integer")
        for name in ("shift_lr", "shift_weight_decay", "shift_final_reevaluate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"search.{name}", getattr(self, name), "must be >= 0")
        for name, allowed in (("shift_bn", ("shift", "recalibrate")),
                              ("shift_update", ("per_generation", "per_candidate")),
                              ("shift_order", ("evaluate_first", "train_first"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"search.{name}", getattr(self, name), f"allowed values: {', '.join(allowed)}")
        if not 0 <= self.shift_momentum < 1:
            raise ConfigError("search.shift_momentum", self.shift_momentum, "must be in [0, 1)")
        if not 0 <= self.shift_label_smoothing < 1:
            raise ConfigError("search.shift_label_smoothing", self.shift_label_smoothing, "must be in [0, 1)")
        if self.transfer_head_lr is not None and self.transfer_head_lr < 0:
            raise ConfigError("search.transfer_head_lr", self.transfer_head_lr,
                              "must be >= 0, or null for search.shift_lr")
        if self.shift_order == "train_first" and self.shift_update != "per_candidate":
            raise ConfigError("search.shift_order", self.shift_order, "train_first needs search.shift_update: "
                              "per_candidate (a per-generation update lands after every candidate is scored)")


def _check_shifting(options: ShiftedEvolutionOptions, recipe: "Recipe", selected: bool) -> None:
    """The order of a candidate's score and its shifting passes, and the transfer's target data."""
    if (selected and options.shift_bn == "shift" and options.shift_order == "evaluate_first"
            and options.shift_update == "per_candidate"):
        raise ConfigError("search.shift_bn", options.shift_bn, "with shift_order: evaluate_first and shift_update: "
                          "per_candidate the shifting passes (and their steps) come after the score, so they cannot be "
                          "its BN recalibration; use shift_order: train_first, shift_update: per_generation, or "
                          "shift_bn: recalibrate")
    transfer = options.transfer_to
    if transfer is not None:
        if not selected:
            raise ConfigError("search.transfer_to", transfer, "needs search.searcher: shifted_evolution "
                              "(the new head is trained by the shifting steps)")
        fields = {f.name for f in dataclasses.fields(type(recipe.data))}
        unknown = sorted(set(transfer) - fields)
        if unknown:
            raise ConfigError(f"search.transfer_to.{unknown[0]}", transfer[unknown[0]],
                              f"unknown data field; allowed: {', '.join(sorted(fields))}")
        if transfer.get("label_map") is not None:
            check_label_map("search.transfer_to.label_map", transfer["label_map"])
    elif options.freeze_features:
        raise ConfigError("search.freeze_features", True, "only applies with search.transfer_to (a new head to train)")


def _prepare_shifting(options: ShiftedEvolutionOptions, session: SearchSession) -> None:
    """Move copies of the supernet, never the supernet itself: a shifter and an evaluator over the copies."""
    context = session.context
    assert context is not None
    if context.train_set is None:
        raise ConfigError("search.searcher", "shifted_evolution", "needs the training split to shift the supernet on")
    models = [copy.deepcopy(m) for m in context.models]
    if session.evaluator is not None:  # its fixed batches are reused
        evaluator = evaluator_over(models, session.evaluator)
    else:
        evaluator = build_evaluator(context.search, models, context.partition, context.calib_loader,
                                    context.val_loader, context.device)
    shifter = build_shifter(context.search, evaluator, context.train_set, context.device, seed=context.seed)
    if shifter.bn_from_shift:
        evaluator.calibrator = shifter.calibrate  # the candidates' shifting passes are their recalibration
    session.evaluator, session.shifter, session.moved_models = evaluator, shifter, list(evaluator.models)


@SEARCHERS.register("shifted_evolution", options=ShiftedEvolutionOptions, check=_check_shifting,
                    prepare=_prepare_shifting)
def build_shifted_evolution(options: ShiftedEvolutionOptions, session: SearchSession) -> ShiftedEvolution:
    """Supernet Shifting: the evolution fine-tunes the supernet on every candidate it samples."""
    if session.shifter is None:
        raise ConfigError("search.searcher", "shifted_evolution", "needs a supernet and training data; run it "
                          "through search_supernet or nds search")
    return ShiftedEvolution(session.shifter, session.seed, session.constraint, options.population,
                            options.generations, options.select_num, options.mutation_num, options.crossover_num,
                            options.mutation_prob, order=options.shift_order,
                            reevaluate_parents=options.shift_reevaluate_parents,
                            final_reevaluate=max(options.shift_final_reevaluate, 0))
