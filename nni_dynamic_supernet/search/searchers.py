"""Searchers: which subnets are evaluated on the trained supernet.

Every searcher has an explicit :class:`Budget` (evaluations and/or wall time) and stops
at it. Scores are cached by architecture: a searcher never pays twice for the same
subnet on the same weights. The board carries a ``version`` of the weights: a searcher
that moves the supernet while it searches (shifted evolution) bumps it, and only then
does a cached score go stale and may be paid for again (:meth:`ScoreBoard.rescore`).

Registered searchers (``search.searcher``): ``evolution``, ``random`` and ``exhaustive`` here,
``shifted_evolution`` in :mod:`.shifting`, ``nsga2`` in :mod:`.nsga2`.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..arch import arch_key, random_arch
from ..components import SEARCHERS
from ..errors import ConfigError
from .context import SearchSession

__all__ = ["Budget", "ScoreBoard", "Searcher", "ExhaustiveSearch", "RandomSearch", "EvolutionSearch", "mutate",
           "score_each", "GenerationOptions", "EvolutionOptions"]


def score_each(board: "ScoreBoard", archs: list[dict]) -> list[dict]:
    """The records of ``archs`` in order, stopping where the board's budget runs out."""
    records = []
    for arch in archs:
        record = board.score(arch)
        if record is None:
            break
        records.append(record)
    return records


def mutate(arch: dict, space: dict, rng: np.random.RandomState, prob: float) -> dict:
    """``arch`` with each label redrawn uniformly from ``space`` with probability ``prob`` (SPOS / NSGA-II mutation)."""
    return {label: (space[label][rng.randint(len(space[label]))] if rng.rand() < prob else value)
            for label, value in arch.items()}


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
    """Evaluates architectures through ``score_fn`` under a budget, keeping the history.

    ``score_fn(arch)`` returns a dict with at least ``accuracy``; extra keys (loss,
    params, flops) are kept in the history. Every record carries the weights ``version``
    it was scored on; :meth:`score` returns the cached record whatever its version (the
    SPOS behaviour), :meth:`rescore` pays again when the record is stale.
    """

    def __init__(self, score_fn: Callable[[dict], dict], budget: Budget) -> None:
        self.score_fn = score_fn
        self.budget = budget
        self.cache: dict[tuple, dict] = {}
        self.history: list[dict] = []
        self.version = 0

    def _evaluate(self, arch: dict) -> Optional[dict]:
        if self.budget.exhausted():
            return None
        record = {"arch": dict(arch), **self.score_fn(arch), "version": self.version}
        self.budget.used += 1
        self.cache[arch_key(arch)] = record  # the latest score replaces an older one, in place
        self.history.append(record)
        return record

    def score(self, arch: dict) -> Optional[dict]:
        """The record of ``arch`` (evaluating it if new); ``None`` when the budget is spent."""
        record = self.cache.get(arch_key(arch))
        return record if record is not None else self._evaluate(arch)

    def is_fresh(self, arch: dict) -> bool:
        """Whether ``arch`` has a score on the current weights."""
        record = self.cache.get(arch_key(arch))
        return record is not None and record["version"] == self.version

    def rescore(self, arch: dict) -> Optional[dict]:
        """The record of ``arch`` on the current weights (re-scoring a stale one); ``None`` when the budget is spent."""
        record = self.cache.get(arch_key(arch))
        if record is not None and record["version"] == self.version:
            return record
        return self._evaluate(arch)

    def top(self, k: int) -> list[dict]:
        """The ``k`` best architectures by their latest accuracy (ties: first evaluated first).

        Scores on the current weights rank before stale ones: after the supernet moved, a
        stale score is not comparable with a fresh one (all are fresh unless weights moved).
        """
        return sorted(self.cache.values(), key=lambda r: (r["version"] != self.version, -r["accuracy"]))[:k]


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
        return random_arch(space, self.rng)

    def random_fill(self, space: dict, seen: set, count: int) -> list[dict]:
        """Up to ``count`` random legal architectures not in ``seen`` (added to it), with bounded attempts."""
        out: list[dict] = []
        for _ in range(max(10 * count, 100)):
            if len(out) >= count:
                break
            arch = self.random_arch(space)
            if self.legal(arch) and arch_key(arch) not in seen:
                seen.add(arch_key(arch))
                out.append(arch)
        return out

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """Search; return searcher-specific diagnostics (the records are on ``board``)."""
        raise NotImplementedError


class ExhaustiveSearch(Searcher):
    """Evaluate every legal architecture (small spaces), in grid order, until the budget ends."""

    name = "exhaustive"

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """Score every legal architecture in grid order until the budget ends; say whether the grid was completed."""
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
        """Score distinct random legal architectures until the budget or the space runs out."""
        size = int(np.prod([len(c) for c in space.values()], dtype=np.float64))
        misses = 0
        while not board.budget.exhausted() and len(board.cache) < size and misses < 10_000:
            arch = self.random_arch(space)
            if not self.legal(arch) or arch_key(arch) in board.cache:
                misses += 1
                continue
            misses = 0
            board.score(arch)
        if not board.history:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        return {}


class EvolutionSearch(Searcher):
    """The SPOS evolutionary search (official SPOS code, ``src/Search/search.py``).

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
        #: Called with the generation index after each generation (diagnostics: tracked architectures).
        self.on_generation_end: Optional[Callable[[int], None]] = None

    def _mutants(self, space: dict, parents: list[dict], seen: set, count: int) -> list[dict]:
        out: list[dict] = []
        for _ in range(10 * count):
            if len(out) >= count or not parents:
                break
            parent = parents[self.rng.randint(len(parents))]
            child = mutate(parent, space, self.rng, self.mutation_prob)
            if self.legal(child) and arch_key(child) not in seen:
                seen.add(arch_key(child))
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
            if self.legal(child) and arch_key(child) not in seen:
                seen.add(arch_key(child))
                out.append(child)
        return out

    def new_seen(self, board: ScoreBoard) -> Any:
        """The set of architectures a child must not repeat (plain SPOS: every one generated so far)."""
        return set()

    def refresh_parents(self, parents: list[dict], board: ScoreBoard) -> list[dict]:
        """Parent records before a generation is scored (hook: re-evaluate them when the weights moved)."""
        return parents

    def finish(self, board: ScoreBoard) -> dict:
        """Called once after the last generation; returns extra diagnostics (hook)."""
        return {}

    def evaluate_generation(self, candidates: list[dict], board: ScoreBoard, generation: int) -> list[dict]:
        """Score one generation's candidates (hook for searchers that also train the supernet)."""
        return score_each(board, candidates)

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """Run the generations; return the per-generation progress and the hooks' diagnostics."""
        seen = self.new_seen(board)
        candidates = self.random_fill(space, seen, self.population)
        if not candidates:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        parents: list[dict] = []
        progress = []
        for generation in range(self.generations):
            parents = self.refresh_parents(parents, board)
            records = self.evaluate_generation(candidates, board, generation)
            pool = {arch_key(r["arch"]): r for r in parents + records}
            parents = sorted(pool.values(), key=lambda r: -r["accuracy"])[: self.select_num]
            if records:
                accs = [r["accuracy"] for r in records]
                progress.append({"generation": generation, "best": float(parents[0]["accuracy"]),
                                 "mean": float(np.mean(accs)), "evaluated": len(records),
                                 "population": [float(a) for a in accs]})
            if self.on_generation_end is not None:
                self.on_generation_end(generation)
            if board.budget.exhausted() or len(records) < len(candidates):
                break
            seen = self.next_seen(seen, board)
            parent_archs = [r["arch"] for r in parents]
            children = self._mutants(space, parent_archs, seen, self.mutation_num)
            children += self._crossovers(parent_archs, seen, self.crossover_num)
            children += self.random_fill(space, seen, self.population - len(children))
            if not children:
                break
            candidates = children
        return {"generations": progress, **self.finish(board)}

    def next_seen(self, seen: Any, board: ScoreBoard) -> Any:
        """The no-repeat set for the next generation (plain SPOS: the same set, so nothing repeats)."""
        return seen


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class GenerationOptions:
    """Options every generational searcher reads: population, generations, per-gene mutation probability."""

    population: int = 50
    generations: int = 20
    mutation_prob: float = 0.1

    def __post_init__(self) -> None:
        for name in ("population", "generations"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"search.{name}", getattr(self, name), "must be a positive integer")
        if not 0 <= self.mutation_prob <= 1:
            raise ConfigError("search.mutation_prob", self.mutation_prob, "must be in [0, 1]")


@dataclass(frozen=True)
class EvolutionOptions(GenerationOptions):
    """Options of the SPOS evolution: parents kept, mutants and crossovers per generation."""

    select_num: int = 10
    mutation_num: int = 25
    crossover_num: int = 25

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select_num <= 0:
            raise ConfigError("search.select_num", self.select_num, "must be a positive integer")
        for name in ("mutation_num", "crossover_num"):
            if getattr(self, name) < 0:
                raise ConfigError(f"search.{name}", getattr(self, name), "must be >= 0")
        if self.select_num > self.population:
            raise ConfigError("search.select_num", self.select_num, f"must be <= search.population ({self.population})")


@SEARCHERS.register("evolution", options=EvolutionOptions)
def build_evolution(options: EvolutionOptions, session: SearchSession) -> EvolutionSearch:
    """The SPOS evolutionary search: parents, mutants, crossovers and random fill per generation."""
    return EvolutionSearch(session.seed, session.constraint, options.population, options.generations,
                           options.select_num, options.mutation_num, options.crossover_num, options.mutation_prob)


@SEARCHERS.register("random")
def build_random(options: None, session: SearchSession) -> RandomSearch:
    """Distinct random legal architectures until the budget ends (RSPS's selection)."""
    return RandomSearch(session.seed, session.constraint)


@SEARCHERS.register("exhaustive")
def build_exhaustive(options: None, session: SearchSession) -> ExhaustiveSearch:
    """Every legal architecture in grid order until the budget ends (small spaces)."""
    return ExhaustiveSearch(session.seed, session.constraint)
