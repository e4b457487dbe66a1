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
than plain evolution. ``search.shift_bn: recalibrate`` is the earlier order: every score
recalibrates on the evaluator's own batches and the shifting passes leave BN as they found it.

Guarantees the tests check: with ``lr = 0`` the search is exactly plain evolution whose
recalibration passes are the shifting batches (the shifter never draws from the searcher's
RNG and only a step that can move the weights makes cached scores stale); with ``lr > 0``
only tensors on sampled paths change (zero gradients are dropped to ``None`` before the
step, so momentum and weight decay never touch an op no candidate used).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from ..errors import ConfigError
from ..training.engine import null_zero_grads
from .evaluate import restore_bn, snapshot_bn
from .searchers import EvolutionSearch, ScoreBoard, arch_key

__all__ = ["SupernetShifter", "ShiftedEvolution", "shifting_optimizer"]


def shifting_optimizer(params: Sequence[nn.Parameter], lr: float, momentum: float, weight_decay: float,
                       head: Sequence[nn.Parameter] = (), head_lr: Optional[float] = None) -> torch.optim.SGD:
    """SGD with weight decay on matrices/kernels only, as the official shifting code (no decay on BN, biases).

    ``head`` (a transferred classifier) may get its own LR ``head_lr``.
    """
    head_ids = {id(p) for p in head}
    groups: list[dict] = []
    for is_head in (False, True):
        chosen = [p for p in params if p.requires_grad and (id(p) in head_ids) == is_head]
        group_lr = head_lr if is_head and head_lr is not None else lr
        decay = [p for p in chosen if p.ndim > 1]
        no_decay = [p for p in chosen if p.ndim <= 1]
        if decay:
            groups.append({"params": decay, "weight_decay": weight_decay, "lr": group_lr})
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0, "lr": group_lr})
    if not groups:
        raise ConfigError("search.freeze_features", True, "leaves no trainable parameter for shifting")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


class _BatchStream:
    """An endless stream of random training batches from its own seeded generator (reshuffled per pass)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device | str) -> None:
        if len(dataset) < batch_size:  # type: ignore[arg-type]
            size = len(dataset)  # type: ignore[arg-type]
            raise ConfigError("search.shift_batch_size", batch_size,
                              f"larger than the training split ({size} examples); lower it")
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(int(seed))
        self.device = device
        self._order: list[int] = []

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self._order) < self.batch_size:
            self._order = torch.randperm(len(self.dataset), generator=self.generator).tolist()  # type: ignore[arg-type]
        picks, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        batch = default_collate([self.dataset[i] for i in picks])
        return batch[0].to(self.device), batch[1].to(self.device)


class SupernetShifter:
    """Fine-tunes the supernet on architectures chosen by a searcher.

    Parameters
    ----------
    models, set_arch, route
        The supernet of each partition leaf, the function forcing an architecture on a
        leaf, and ``arch -> leaf`` (as in :class:`~.evaluate.SubnetEvaluator`).
    train_set
        Training examples ``(x, y, ...)``; batches are drawn from it at random.
    lr, momentum, weight_decay
        The shifting SGD (paper and code: 1e-4, 0.9, 4e-5).
    iters, batch_size
        Batches per candidate and their size (paper: 640 samples; code: 20 x 150).
    update
        ``'per_generation'`` (accumulate, one step in :meth:`end_generation`) or
        ``'per_candidate'`` (a step after every batch).
    label_smoothing
        Of the cross-entropy loss (code: 0.1).
    seed
        Seed of the batch stream (independent of the searcher's RNG).
    head, head_lr
        A transferred classifier and its LR (default: ``lr``).
    bn_from_shift
        The candidate's shifting passes are its BN recalibration (see the module docstring):
        :class:`ShiftedEvolution` arms :meth:`calibrate`, installed as the evaluator's calibrator.
    """

    def __init__(self, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 route: Callable[[dict], int], train_set: Dataset, lr: float = 1e-4, momentum: float = 0.9,
                 weight_decay: float = 4e-5, iters: int = 20, batch_size: int = 32, update: str = "per_generation",
                 label_smoothing: float = 0.1, seed: int = 0, device: torch.device | str = "cpu",
                 head: Sequence[nn.Parameter] = (), head_lr: Optional[float] = None,
                 bn_from_shift: bool = False) -> None:
        if update not in ("per_generation", "per_candidate"):
            raise ConfigError("search.shift_update", update, "allowed values: per_generation, per_candidate")
        if iters <= 0:
            raise ConfigError("search.shift_iters", iters, "must be a positive integer")
        self.models = list(models)
        self.set_arch = list(set_arch)
        self.route = route
        self.iters = iters
        self.update = update
        self.label_smoothing = label_smoothing
        self.stream = _BatchStream(train_set, batch_size, seed, device)
        # Parameters shared by several leaves (none today) must appear once in the optimizer.
        unique: dict[int, nn.Parameter] = {}
        for model in self.models:
            for p in model.parameters():
                unique.setdefault(id(p), p)
        self.params = [p for p in unique.values() if p.requires_grad]
        self.optimizer = shifting_optimizer(self.params, lr, momentum, weight_decay, head, head_lr)
        self.can_move = any(g["lr"] > 0 for g in self.optimizer.param_groups)
        self._bns = [[m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
                     for model in self.models]
        #: Bumped by every optimizer step that can change the weights (scores taken before are stale).
        self.version = 0
        self.steps = 0
        self.candidates = 0
        self.seconds = 0.0
        self.losses: list[float] = []
        self._pending = False
        self.bn_from_shift = bool(bn_from_shift)
        self._armed = False

    def arm(self) -> None:
        """Let the next :meth:`calibrate` call shift the candidate being scored (once)."""
        self._armed = True

    def disarm(self) -> bool:
        """Cancel an unused :meth:`arm`; returns whether it was still armed (the evaluator did not calibrate)."""
        armed, self._armed = self._armed, False
        return armed

    def calibrate(self, leaf: int, arch: dict) -> bool:
        """The evaluator's calibrator: when armed, the candidate's shifting passes recalibrate its BN.

        Returns ``False`` when not armed (tracked architectures, the final re-scoring): the
        evaluator then recalibrates on its own batches and nothing is shifted.
        """
        if not self._armed:
            return False
        self._armed = False
        with torch.enable_grad():
            self.train_candidate(arch, keep_bn=True)
        return True

    def train_candidate(self, arch: dict, keep_bn: bool = False) -> float:
        """Take the candidate's loss on ``iters`` fresh batches; step now or accumulate. Returns the mean loss.

        ``keep_bn``: leave the train-mode BN statistics in place (the evaluator recalibrates
        through these passes and restores BN itself); otherwise they are put back.
        """
        started = time.perf_counter()
        leaf = self.route(arch)
        model = self.models[leaf]
        was_training = model.training
        self.set_arch[leaf](arch)
        # Unless these passes are the evaluator's recalibration, shifting must not leak its
        # train-mode running averages into later scores, so they are put back afterwards.
        saved = None if keep_bn else snapshot_bn(self._bns[leaf])
        model.train()
        total = 0.0
        try:
            for _ in range(self.iters):
                x, y = self.stream.next()
                loss = F.cross_entropy(model(x), y, label_smoothing=self.label_smoothing)
                loss.backward()
                self._pending = True
                total += float(loss.detach())
                if self.update == "per_candidate":
                    self.step()
        finally:
            if saved is not None:
                restore_bn(self._bns[leaf], saved)
            model.train(was_training)
        self.candidates += 1
        self.losses.append(total / self.iters)
        self.seconds += time.perf_counter() - started
        return total / self.iters

    def end_generation(self) -> None:
        """The per-generation update of the paper: one step with the accumulated gradient."""
        if self.update == "per_generation" and self._pending:
            started = time.perf_counter()
            self.step()
            self.seconds += time.perf_counter() - started

    def step(self) -> None:
        """One optimizer step on the gradients gathered so far, then clear them (``None``, not zero)."""
        # An op whose output is multiplied away (an NB201 edge feeding only `none`) gets an exact-zero
        # gradient: drop it so momentum and weight decay leave that op alone, as they leave unused ones.
        null_zero_grads(self.params)
        if any(p.grad is not None for p in self.params):
            self.optimizer.step()
            self.steps += 1
            if self.can_move:
                self.version += 1
        self.optimizer.zero_grad(set_to_none=True)
        self._pending = False

    def summary(self) -> dict:
        """What the shifting did, for results.json."""
        return {"steps": self.steps, "candidates_trained": self.candidates, "seconds": self.seconds,
                "iters_per_candidate": self.iters, "batch_size": self.stream.batch_size, "update": self.update,
                "bn": "shift" if self.bn_from_shift else "recalibrate",
                "lr": [g["lr"] for g in self.optimizer.param_groups],
                "mean_loss": float(np.mean(self.losses)) if self.losses else None}


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

    def __contains__(self, key: tuple) -> bool:
        if key in self.local:
            return True
        record = self.board.cache.get(key)
        return record is not None and record["version"] == self.board.version

    def add(self, key: tuple) -> None:
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
        return _GenerationSeen(board)

    def next_seen(self, seen: Any, board: ScoreBoard) -> Any:
        return _GenerationSeen(board)

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
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
