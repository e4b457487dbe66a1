"""Balanced min-cut of GM-NAS: brute force against an independent enumeration, sizes and edge rules."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.training.partition.min_cut import (balanced_partitions, min_cut, min_group_size, select_split,
                                                   within_cost)


def _exhaustive_min(d: np.ndarray, groups: int) -> float:
    """Minimum within-group cost over every labelling of the choices (independent of the generator)."""
    n = len(d)
    low = min_group_size(n, groups)
    best = np.inf
    for labels in itertools.product(range(groups), repeat=n):
        sizes = np.bincount(labels, minlength=groups)
        if (sizes < low).any():
            continue
        cost = sum(d[i, j] for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j])
        best = min(best, cost)
    return best


def _random_distance(n: int, rng: np.random.RandomState) -> np.ndarray:
    a = rng.rand(n, n)
    return (a + a.T) / 2


@pytest.mark.parametrize("n,groups", [(4, 2), (5, 2), (6, 2), (6, 3), (7, 2), (7, 3)])
def test_min_cut_equals_exhaustive_enumeration(n: int, groups: int) -> None:
    rng = np.random.RandomState(n * 10 + groups)
    for _ in range(5):
        d = _random_distance(n, rng)
        partition, cost = min_cut(d, groups)
        assert cost == pytest.approx(_exhaustive_min(d, groups), abs=1e-12)
        assert cost == pytest.approx(within_cost(d, partition), abs=1e-12)
        assert sorted(i for g in partition for i in g) == list(range(n))
        assert len(partition) == groups


def test_min_cut_finds_two_obvious_blocks() -> None:
    d = np.ones((5, 5))
    for block in ([0, 3], [1, 2, 4]):
        for i in block:
            for j in block:
                d[i, j] = 0.05
    partition, cost = min_cut(d, 2)
    assert sorted(map(sorted, partition)) == [[0, 3], [1, 2, 4]]
    assert cost == pytest.approx(4 * 0.05)


def test_seven_choices_in_three_groups_scale_and_balance() -> None:
    # 7 MobileNet choices into 3 groups: S(7, 3) = 301 set partitions, of which sizes (2, 2, 3) survive.
    parts = list(balanced_partitions(7, 3))
    assert len(parts) == len({tuple(sorted(p)) for p in parts})  # each partition once
    assert all(sorted(map(len, p)) == [2, 2, 3] for p in parts)
    assert len(parts) == 105  # 7! / (2! 2! 3! 2!)


@pytest.mark.parametrize("n,groups,sizes", [(5, 2, {(2, 3)}), (4, 2, {(2, 2)}), (7, 2, {(2, 5), (3, 4)}),
                                            (6, 3, {(2, 2, 2)}), (5, 5, {(1, 1, 1, 1, 1)}), (3, 2, {(1, 2)})])
def test_group_sizes_follow_the_official_code(n: int, groups: int, sizes: set) -> None:
    assert {tuple(sorted(map(len, p))) for p in balanced_partitions(n, groups)} == sizes


def test_edge_rules_pick_by_their_own_criterion() -> None:
    # Label "a": a clear 2-block structure (large across-cut distance); label "b": all pairs small.
    a = np.ones((4, 4))
    a[:2, :2] = a[2:, 2:] = 0.0
    b = np.full((4, 4), 0.1)
    c = np.full((4, 4), 0.05)
    distances = {"a": a, "b": b, "c": c}
    assert select_split(distances, 2, "max_cut")["label"] == "a"
    # Least within-group distance: "a" has 0 within its blocks.
    assert select_split(distances, 2, "min_within")["label"] == "a"
    both = select_split({"b": b, "c": c}, 2, "min_within")
    assert both["label"] == "c" and both["candidates"]["c"]["within"] == pytest.approx(0.1)
    assert select_split({"b": b, "c": c}, 2, "max_cut")["label"] == "b"


def test_random_rule_is_seeded_and_balanced() -> None:
    d = {k: np.zeros((5, 5)) for k in "xyz"}
    first = [select_split(d, 2, "random", np.random.RandomState(3)) for _ in range(2)]
    assert first[0]["label"] == first[1]["label"] and first[0]["groups"] == first[1]["groups"]
    assert sorted(map(len, first[0]["groups"])) == [2, 3]
    with pytest.raises(ConfigError, match="gm_edge_rule"):
        select_split(d, 2, "best")
