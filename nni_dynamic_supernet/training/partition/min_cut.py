"""Balanced min-cut of a label's choices into groups, and the choice of the label to split (GM-NAS).

Given a symmetric distance matrix ``D`` between the choices of one label (``1 - cos`` of their
gradients on the shared weights), GM-NAS splits the choices into ``B`` groups that minimise the
total *within-group* distance; since the sum over all pairs is fixed, that is the same as
maximising the distance across the cut (the GM-NAS paper's min-cut). Balance is enforced by the allowed group
sizes, not by a penalty: every group holds at least ``min(2, n // B)`` choices, which gives the
official code's sizes (5 ops, B = 2: 2 + 3; 7 ops, B = 2: smaller group 2..3; 6 ops, B = 3:
2 + 2 + 2; B = n: singletons, i.e. few-shot NAS).

The brute force enumerates set partitions once each (restricted growth strings), so it scales
past 5 choices and has no running sum to reset (the ProxylessNAS code's 3-way bug, §3(f)6).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

from ...errors import ConfigError

__all__ = ["min_group_size", "balanced_partitions", "within_cost", "min_cut", "select_split", "edge_stability",
           "EDGE_RULES"]

#: Edge-selection rules: NB201 code (max across-cut distance), DARTS/ProxylessNAS code (min
#: within-group distance), and the random ablation.
EDGE_RULES = ("max_cut", "min_within", "random")

Groups = tuple[tuple[int, ...], ...]


def min_group_size(n: int, groups: int) -> int:
    """Smallest allowed group when ``n`` choices go into ``groups`` groups (see the module docstring)."""
    return max(1, min(2, n // groups))


def balanced_partitions(n: int, groups: int, min_size: Optional[int] = None) -> Iterator[Groups]:
    """Every partition of ``range(n)`` into exactly ``groups`` unordered groups of at least ``min_size``.

    Each partition is yielded once, groups ordered by their smallest member and members sorted.

    Parameters
    ----------
    n
        Number of choices.
    groups
        Number of groups (the branching factor), ``1 <= groups <= n``.
    min_size
        Smallest allowed group; default :func:`min_group_size`.
    """
    if not 1 <= groups <= n:
        raise ConfigError("training.split_branching", groups, f"must be between 1 and the number of choices ({n})")
    low = min_group_size(n, groups) if min_size is None else min_size
    assignment = [0] * n

    def extend(i: int, used: int) -> Iterator[Groups]:
        if n - i < groups - used:  # not enough items left to open the missing groups
            return
        if i == n:
            out = tuple(tuple(j for j in range(n) if assignment[j] == g) for g in range(used))
            if all(len(g) >= low for g in out):
                yield out
            return
        for g in range(min(used + 1, groups)):
            assignment[i] = g
            yield from extend(i + 1, max(used, g + 1))

    yield from extend(0, 0)


def within_cost(distance: np.ndarray, partition: Groups) -> float:
    """Sum over groups of the distances of every pair inside the group."""
    return float(sum(distance[i, j] for group in partition for a, i in enumerate(group) for j in group[a + 1:]))


def min_cut(distance: Sequence[Sequence[float]], groups: int, min_size: Optional[int] = None) -> tuple[Groups, float]:
    """The balanced partition with the least within-group distance, and that distance.

    Ties keep the first partition in :func:`balanced_partitions` order, so the result is
    deterministic. ``distance`` is symmetrised first.
    """
    d = np.asarray(distance, dtype=np.float64)
    d = (d + d.T) / 2.0
    best: Optional[Groups] = None
    best_cost = np.inf
    for partition in balanced_partitions(len(d), groups, min_size):
        cost = within_cost(d, partition)
        if cost < best_cost:
            best, best_cost = partition, cost
    if best is None:
        raise ConfigError("training.split_branching", groups, f"no balanced partition of {len(d)} choices exists")
    return best, float(best_cost)


def select_split(distances: dict[str, np.ndarray], groups: int, rule: str,
                 rng: Optional[np.random.RandomState] = None) -> dict:
    """Pick the label to split and its partition.

    Parameters
    ----------
    distances
        Candidate label -> its choices' distance matrix (ignored, may be empty, for ``random``).
    groups
        Branching factor.
    rule
        ``max_cut`` (largest across-cut distance, NB201 code), ``min_within`` (least
        within-group distance, DARTS/ProxylessNAS code) or ``random`` (a random label and a
        random balanced partition: the paper's ablation).
    rng
        Random state for ``random``.

    Returns
    -------
    dict
        ``label``, ``groups`` (tuples of choice indices), and per candidate label its best
        ``groups``, ``within`` and ``across`` costs under ``candidates``.
    """
    if rule not in EDGE_RULES:
        raise ConfigError("training.gm_edge_rule", rule, f"allowed values: {', '.join(EDGE_RULES)}")
    candidates: dict[str, dict] = {}
    if rule == "random":
        if rng is None:
            raise ValueError("the random rule needs an rng")
        labels = list(distances)
        label = labels[rng.randint(len(labels))]
        options = list(balanced_partitions(len(distances[label]), groups))
        return {"label": label, "groups": [list(g) for g in options[rng.randint(len(options))]],
                "candidates": {}}
    for label, d in distances.items():
        d = np.asarray(d, dtype=np.float64)
        d = (d + d.T) / 2.0
        part, within = min_cut(d, groups)
        total = float(np.triu(d, 1).sum())
        candidates[label] = {"groups": [list(g) for g in part], "within": within, "across": total - within}
    if rule == "max_cut":
        label = max(candidates, key=lambda k: candidates[k]["across"])  # first label wins ties
    else:
        label = min(candidates, key=lambda k: candidates[k]["within"])
    return {"label": label, "groups": candidates[label]["groups"], "candidates": candidates}


def edge_stability(per_repeat: dict[str, np.ndarray], choice: dict, rule: str, groups: int) -> dict:
    """How far the chosen label's edge score stands above its noise over the R repeats.

    Each label's score is recomputed per repeat with its chosen groups fixed (``max_cut``: the
    across-cut distance; ``min_within``: minus the within-group distance), giving its mean and
    standard error. ``margin`` is the chosen label's mean score minus the runner-up's and
    ``noise`` the standard error of that difference (the labels' repeats are independent
    draws), so ``margin_over_noise`` below about 2 means another draw of R batches could well
    pick another label. ``group_agreement`` is the fraction of repeats whose own min-cut of the
    chosen label gives the chosen groups.

    Parameters
    ----------
    per_repeat
        Label -> ``(R, n, n)`` distance matrices of every repeat.
    choice
        :func:`select_split`'s result.
    rule
        ``max_cut`` or ``min_within``.
    groups
        Branching factor.
    """
    scores: dict[str, dict] = {}
    for label, stack in per_repeat.items():
        part = tuple(tuple(g) for g in choice["candidates"][label]["groups"])
        values = []
        for d in np.asarray(stack, dtype=np.float64):
            d = (d + d.T) / 2.0
            within = within_cost(d, part)
            values.append(float(np.triu(d, 1).sum()) - within if rule == "max_cut" else -within)
        arr = np.array(values)
        se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else None
        scores[label] = {"mean": float(arr.mean()), "se": se}
    label = choice["label"]
    others = [k for k in scores if k != label]
    out: dict = {"repeats": int(len(next(iter(per_repeat.values())))), "scores": scores,
                 "runner_up": None, "margin": None, "noise": None, "margin_over_noise": None}
    if others:
        runner = max(others, key=lambda k: scores[k]["mean"])
        margin = scores[label]["mean"] - scores[runner]["mean"]
        se_a, se_b = scores[label]["se"], scores[runner]["se"]
        noise = float(np.hypot(se_a, se_b)) if se_a is not None and se_b is not None else None
        out.update(runner_up=runner, margin=margin, noise=noise,
                   margin_over_noise=margin / noise if noise else None)
    chosen = tuple(tuple(g) for g in choice["groups"])
    agree = [min_cut(d, groups)[0] == chosen for d in np.asarray(per_repeat[label], dtype=np.float64)]
    out["group_agreement"] = float(np.mean(agree))
    return out
