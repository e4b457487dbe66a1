"""Searchers: which subnets are evaluated on the trained supernet.

Every searcher has an explicit :class:`Budget` (evaluations and/or wall time) and stops
at it. Scores are cached by architecture: a searcher never pays twice for the same
subnet (the SPOS search does not re-evaluate; shifted evolution overrides that).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import ConfigError

__all__ = ["Budget", "ScoreBoard", "Searcher", "ExhaustiveSearch", "RandomSearch", "EvolutionSearch"]


def _key(arch: dict) -> tuple:
    return tuple(sorted(arch.items()))


@dataclass
class Budget:
    """Stop after ``max_evaluations`` evaluations or ``max_seconds`` seconds, whichever comes first."""

    max_evaluations: Optional[int] = None
    max_seconds: Optional[float] = None
    started: float = field(default_factory=time.monotonic)
    used: int = 0

    def exhausted(self) -> bool:
        """Whether no further evaluation may start."""
        if self.max_evaluations is not None and self.used >= self.max_evaluations:
            return True
        return self.max_seconds is not None and time.monotonic() - self.started >= self.max_seconds


class ScoreBoard:
    """Evaluates architectures through ``score_fn`` once each, under a budget, keeping the history.

    ``score_fn(arch)`` returns a dict with at least ``accuracy``; extra keys (loss,
    params, flops) are kept in the history.
    """

    def __init__(self, score_fn: Callable[[dict], dict], budget: Budget) -> None:
        self.score_fn = score_fn
        self.budget = budget
        self.cache: dict[tuple, dict] = {}
        self.history: list[dict] = []

    def score(self, arch: dict) -> Optional[dict]:
        """The record of ``arch`` (evaluating it if new); ``None`` when the budget is spent."""
        key = _key(arch)
        if key in self.cache:
            return self.cache[key]
        if self.budget.exhausted():
            return None
        record = {"arch": dict(arch), **self.score_fn(arch)}
        self.budget.used += 1
        self.cache[key] = record
        self.history.append(record)
        return record

    def top(self, k: int) -> list[dict]:
        """The ``k`` best records by accuracy (ties: first evaluated first)."""
        return sorted(self.history, key=lambda r: -r["accuracy"])[:k]


class Searcher:
    """Base class: ``run(space, board)`` evaluates architectures of ``space`` on ``board``."""

    name = "base"

    def __init__(self, seed: int = 0, constraint: Optional[Callable[[dict], bool]] = None) -> None:
        self.rng = np.random.RandomState(seed)
        self.constraint = constraint

    def legal(self, arch: dict) -> bool:
        """Whether ``arch`` satisfies the constraint."""
        return self.constraint is None or self.constraint(arch)

    def random_arch(self, space: dict[str, list]) -> dict:
        """One uniformly random architecture."""
        return {label: choices[self.rng.randint(len(choices))] for label, choices in space.items()}

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """Search; return searcher-specific diagnostics (the records are on ``board``)."""
        raise NotImplementedError


class ExhaustiveSearch(Searcher):
    """Evaluate every legal architecture (small spaces), in grid order, until the budget ends."""

    name = "exhaustive"

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        labels = list(space)
        for values in itertools.product(*space.values()):
            arch = dict(zip(labels, values))
            if not self.legal(arch):
                continue
            if board.score(arch) is None:
                return {"complete": False}
        if not board.history:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        return {"complete": True}


class RandomSearch(Searcher):
    """Evaluate distinct random legal architectures until the budget ends (RSPS's selection)."""

    name = "random"

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        size = int(np.prod([len(c) for c in space.values()], dtype=np.float64))
        misses = 0
        while not board.budget.exhausted() and len(board.cache) < size and misses < 10_000:
            arch = self.random_arch(space)
            if not self.legal(arch) or _key(arch) in board.cache:
                misses += 1
                continue
            misses = 0
            board.score(arch)
        if not board.history:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        return {}


class EvolutionSearch(Searcher):
    """The SPOS evolutionary search (METHODS §7.3).

    Each generation evaluates the new candidates, keeps the ``select_num`` best seen so
    far as parents, and builds the next population from ``mutation_num`` mutants (each
    gene re-drawn with ``mutation_prob``), ``crossover_num`` gene-wise crossovers of two
    parents, and random legal architectures up to ``population``. Each generator gets
    10x its quota of attempts; illegal or already-seen children are skipped.
    """

    name = "evolution"

    def __init__(self, seed: int = 0, constraint: Optional[Callable[[dict], bool]] = None, population: int = 50,
                 generations: int = 20, select_num: int = 10, mutation_num: int = 25, crossover_num: int = 25,
                 mutation_prob: float = 0.1) -> None:
        super().__init__(seed, constraint)
        self.population = population
        self.generations = generations
        self.select_num = select_num
        self.mutation_num = mutation_num
        self.crossover_num = crossover_num
        self.mutation_prob = mutation_prob

    def _random_fill(self, space: dict, seen: set, count: int) -> list[dict]:
        out: list[dict] = []
        for _ in range(max(10 * count, 100)):
            if len(out) >= count:
                break
            arch = self.random_arch(space)
            if self.legal(arch) and _key(arch) not in seen:
                seen.add(_key(arch))
                out.append(arch)
        return out

    def _mutants(self, space: dict, parents: list[dict], seen: set, count: int) -> list[dict]:
        out: list[dict] = []
        for _ in range(10 * count):
            if len(out) >= count or not parents:
                break
            parent = parents[self.rng.randint(len(parents))]
            child = {label: (space[label][self.rng.randint(len(space[label]))]
                             if self.rng.rand() < self.mutation_prob else value) for label, value in parent.items()}
            if self.legal(child) and _key(child) not in seen:
                seen.add(_key(child))
                out.append(child)
        return out

    def _crossovers(self, parents: list[dict], seen: set, count: int) -> list[dict]:
        out: list[dict] = []
        for _ in range(10 * count):
            if len(out) >= count or len(parents) < 2:
                break
            a = parents[self.rng.randint(len(parents))]
            b = parents[self.rng.randint(len(parents))]
            child = {label: (a[label] if self.rng.rand() < 0.5 else b[label]) for label in a}
            if self.legal(child) and _key(child) not in seen:
                seen.add(_key(child))
                out.append(child)
        return out

    def evaluate_generation(self, candidates: list[dict], board: ScoreBoard, generation: int) -> list[dict]:
        """Score one generation's candidates (hook for searchers that also train the supernet)."""
        records = []
        for arch in candidates:
            record = board.score(arch)
            if record is None:
                break
            records.append(record)
        return records

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        seen: set = set()
        candidates = self._random_fill(space, seen, self.population)
        if not candidates:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        parents: list[dict] = []
        progress = []
        for generation in range(self.generations):
            records = self.evaluate_generation(candidates, board, generation)
            pool = {_key(r["arch"]): r for r in parents + records}
            parents = sorted(pool.values(), key=lambda r: -r["accuracy"])[: self.select_num]
            if records:
                accs = [r["accuracy"] for r in records]
                progress.append({"generation": generation, "best": float(parents[0]["accuracy"]),
                                 "mean": float(np.mean(accs)), "evaluated": len(records)})
            if board.budget.exhausted() or len(records) < len(candidates):
                break
            parent_archs = [r["arch"] for r in parents]
            children = self._mutants(space, parent_archs, seen, self.mutation_num)
            children += self._crossovers(parent_archs, seen, self.crossover_num)
            children += self._random_fill(space, seen, self.population - len(children))
            if not children:
                break
            candidates = children
        return {"generations": progress}
