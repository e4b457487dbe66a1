"""NSGA-II multi-objective search: accuracy against parameters and/or FLOPs.

Supernet Shifting's paper also searches under a measured-latency trade-off with NSGA-II
(Deb et al. 2002). Each generation creates ``population`` children by binary
tournament (lower non-domination rank wins, then larger crowding distance), gene-wise
uniform crossover and per-gene mutation; parents and children are merged and the next
population is filled front by front, the last front cut by crowding distance. The
result is the Pareto front of every architecture evaluated: no other evaluated
architecture is at least as accurate *and* at least as small, and better in one.

Registered as ``search.searcher: nsga2``, with its options (:class:`NSGA2Options`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..arch import arch_key
from ..components import SEARCHERS
from ..errors import ConfigError
from .context import SearchSession
from .searchers import GenerationOptions, ScoreBoard, Searcher, mutate, score_each

__all__ = ["NSGA2Search", "NSGA2Options", "non_dominated_sort", "crowding_distance", "pareto_front"]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_sort(costs: np.ndarray) -> list[list[int]]:
    """Fronts of row indices of ``costs`` (n x m, every objective minimised), best front first."""
    n = len(costs)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    count = np.zeros(n, dtype=int)
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(costs[i], costs[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif _dominates(costs[j], costs[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding_distance(costs: np.ndarray) -> np.ndarray:
    """Crowding distance of each row of ``costs`` within its front (boundary points: infinity)."""
    n, m = costs.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(costs[:, k], kind="stable")
        span = costs[order[-1], k] - costs[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span <= 0:
            continue
        for pos in range(1, n - 1):
            distance[order[pos]] += (costs[order[pos + 1], k] - costs[order[pos - 1], k]) / span
    return distance


def pareto_front(records: Sequence[dict], objectives: Sequence[str]) -> list[dict]:
    """The non-dominated records (maximise ``accuracy``, minimise the others), sorted by the first cost objective."""
    if not records:
        return []
    costs = _costs(records, objectives)
    front = non_dominated_sort(costs)[0]
    cost_keys = [o for o in objectives if o != "accuracy"]
    return sorted((records[i] for i in front), key=lambda r: (r[cost_keys[0]], -r["accuracy"]))


def _costs(records: Sequence[dict], objectives: Sequence[str]) -> np.ndarray:
    try:
        return np.array([[-r["accuracy"] if o == "accuracy" else float(r[o]) for o in objectives] for r in records],
                        dtype=np.float64)
    except KeyError as exc:
        raise ConfigError("search.objectives", list(objectives),
                          f"the evaluator reports no {exc.args[0]}; the space needs parameter/FLOPs counting") from None


class NSGA2Search(Searcher):
    """NSGA-II over architectures, maximising accuracy and minimising ``objectives[1:]`` (params, flops).

    Parameters
    ----------
    seed, constraint
        As for every searcher; illegal children are never evaluated.
    population, generations
        Population size and number of generations.
    mutation_prob
        Per-gene re-draw probability of a child.
    objectives
        ``['accuracy', 'params']``, ``['accuracy', 'flops']`` or all three.
    """

    name = "nsga2"

    def __init__(self, seed: int = 0, constraint: Optional[Callable[[dict], bool]] = None, population: int = 50,
                 generations: int = 20, mutation_prob: float = 0.1,
                 objectives: Sequence[str] = ("accuracy", "params")) -> None:
        super().__init__(seed, constraint)
        self.population = population
        self.generations = generations
        self.mutation_prob = mutation_prob
        self.objectives = list(objectives)
        self.on_generation_end: Optional[Callable[[int], None]] = None

    def _rank_and_crowding(self, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        costs = _costs(records, self.objectives)
        rank = np.zeros(len(records), dtype=int)
        crowd = np.zeros(len(records))
        for r, front in enumerate(non_dominated_sort(costs)):
            rank[front] = r
            crowd[front] = crowding_distance(costs[front])
        return rank, crowd

    def _tournament(self, records: list[dict], rank: np.ndarray, crowd: np.ndarray) -> dict:
        i, j = self.rng.randint(len(records)), self.rng.randint(len(records))
        better = i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j
        return records[better]["arch"]

    def _children(self, space: dict, records: list[dict], seen: set) -> list[dict]:
        rank, crowd = self._rank_and_crowding(records)
        out: list[dict] = []
        for _ in range(10 * self.population):
            if len(out) >= self.population:
                break
            a, b = self._tournament(records, rank, crowd), self._tournament(records, rank, crowd)
            child = {label: (a[label] if self.rng.rand() < 0.5 else b[label]) for label in a}
            child = mutate(child, space, self.rng, self.mutation_prob)
            if self.legal(child) and arch_key(child) not in seen:
                seen.add(arch_key(child))
                out.append(child)
        return out

    def _select(self, records: list[dict]) -> list[dict]:
        costs = _costs(records, self.objectives)
        chosen: list[int] = []
        for front in non_dominated_sort(costs):
            if len(chosen) + len(front) <= self.population:
                chosen += front
                continue
            crowd = crowding_distance(costs[front])
            order = sorted(range(len(front)), key=lambda k: -crowd[k])
            chosen += [front[k] for k in order[: self.population - len(chosen)]]
            break
        return [records[i] for i in chosen]

    def run(self, space: dict[str, list], board: ScoreBoard) -> dict:
        """Evolve the population for generations; return the Pareto front and the per-generation fronts."""
        seen: set = set()
        candidates = self.random_fill(space, seen, self.population)
        if not candidates:
            raise ConfigError("search.constraint", "min/max", "no architecture satisfies the search constraint")
        population: list[dict] = []
        progress = []
        for generation in range(self.generations):
            records = score_each(board, candidates)
            if not records and not population:
                break
            population = self._select(population + records)
            front = pareto_front(population, self.objectives)
            accs = [r["accuracy"] for r in records] or [float("nan")]
            progress.append({"generation": generation, "best": float(max(r["accuracy"] for r in population)),
                             "mean": float(np.mean(accs)), "evaluated": len(records),
                             "population": [float(a) for a in accs], "front_size": len(front)})
            if self.on_generation_end is not None:
                self.on_generation_end(generation)
            if board.budget.exhausted() or len(records) < len(candidates):
                break
            candidates = self._children(space, population, seen)
            if not candidates:
                break
        front = pareto_front(list(board.cache.values()), self.objectives)
        keep = ["accuracy", *[o for o in self.objectives if o != "accuracy"]]
        return {"generations": progress, "objectives": self.objectives,
                "pareto_front": [{"arch": r["arch"], **{k: r[k] for k in keep}} for r in front],
                "evaluated": [{k: r[k] for k in keep} for r in board.cache.values()]}


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class NSGA2Options(GenerationOptions):
    """Options of NSGA-II: the objectives, accuracy against params and/or flops."""

    objectives: list = field(default_factory=lambda: ["accuracy", "params"])

    def __post_init__(self) -> None:
        super().__post_init__()
        objectives = self.objectives
        if (not isinstance(objectives, list) or len(set(objectives)) != len(objectives) or "accuracy" not in objectives
                or not set(objectives) <= {"accuracy", "params", "flops"} or len(objectives) < 2):
            raise ConfigError("search.objectives", objectives,
                              "must list accuracy and at least one of params, flops, e.g. [accuracy, params]")


def _needs_counting(options: NSGA2Options, session: SearchSession) -> None:
    """NSGA-II trades accuracy against parameters or FLOPs: it cannot run without counting them."""
    if session.complexity is None:
        raise ConfigError("search.objectives", options.objectives, "needs parameter/FLOPs counting of the space")


@SEARCHERS.register("nsga2", options=NSGA2Options, prepare=_needs_counting)
def build_nsga2(options: NSGA2Options, session: SearchSession) -> NSGA2Search:
    """NSGA-II: the Pareto front of accuracy against parameters and/or FLOPs."""
    return NSGA2Search(session.seed, session.constraint, options.population, options.generations,
                       options.mutation_prob, options.objectives)
