"""Tests of the path samplers: uniform (SPOS), strict fair (FairNAS), cluster fair (FairNAS + MS)."""
from __future__ import annotations

import collections
import pickle

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.training.paths import (ClusterFairPathSampler, StrictFairPathSampler, UniformPathSampler,
                                                 rng_state, set_rng_state)

torch.set_num_threads(1)

SPACE = {f"e{i}": ["none", "skip", "c1", "c3", "pool"] for i in range(4)}
UNEVEN = {"a": [0, 1, 2], "b": ["x", "y", "z", "w", "v"], "c": [True, False], "d": ["only"]}


def _key(arch):
    return tuple(sorted(arch.items()))


# ---------------------------------------------------------------------------------------------- uniform
def test_uniform_one_path_covering_all_choices():
    sampler = UniformPathSampler(seed=0)
    seen = collections.defaultdict(collections.Counter)
    for _ in range(400):
        paths = sampler.sample(SPACE)
        assert len(paths) == 1
        arch = paths[0]
        assert set(arch) == set(SPACE)
        for label, value in arch.items():
            assert value in SPACE[label]
            seen[label][value] += 1
    for label, choices in SPACE.items():
        assert set(seen[label]) == set(choices)
        # Roughly uniform: 80 expected per choice.
        assert min(seen[label].values()) > 40


def test_uniform_deterministic_by_seed():
    s1, s2, s3 = UniformPathSampler(seed=3), UniformPathSampler(seed=3), UniformPathSampler(seed=4)
    seq1 = [s1.sample(SPACE)[0] for _ in range(20)]
    seq2 = [s2.sample(SPACE)[0] for _ in range(20)]
    seq3 = [s3.sample(SPACE)[0] for _ in range(20)]
    assert seq1 == seq2
    assert seq1 != seq3


@pytest.mark.parametrize("cls", [UniformPathSampler, StrictFairPathSampler])
def test_state_dict_round_trip_continues_sequence(cls):
    sampler = cls(seed=11)
    for _ in range(5):
        sampler.sample(SPACE)
    state = sampler.state_dict()
    # Plain data: survives pickling / weights_only checkpoints.
    state = pickle.loads(pickle.dumps(state))
    expected = [sampler.sample(SPACE) for _ in range(10)]
    fresh = cls(seed=999)
    fresh.load_state_dict(state)
    assert [fresh.sample(SPACE) for _ in range(10)] == expected


def test_rng_state_helpers_plain_types():
    import numpy as np
    rng = np.random.RandomState(5)
    rng.rand(3)
    state = rng_state(rng)
    assert all(type(k) is int for k in state["keys"])
    expected = rng.rand(4)
    other = np.random.RandomState(0)
    set_rng_state(other, state)
    assert (other.rand(4) == expected).all()


def test_uniform_constraint_rejects_paths():
    # Only archs with at least 3 'c3' ops are allowed.
    def fn(arch):
        return sum(v == "c3" for v in arch.values())

    sampler = UniformPathSampler(seed=0, constraint=(fn, 3, None), patience=10_000)
    for _ in range(30):
        arch = sampler.sample(SPACE)[0]
        assert fn(arch) >= 3
    upper = UniformPathSampler(seed=1, constraint=(fn, None, 0))
    for _ in range(30):
        assert fn(upper.sample(SPACE)[0]) == 0


def test_uniform_impossible_constraint_is_config_error():
    sampler = UniformPathSampler(seed=0, constraint=(lambda arch: 1.0, 5.0, 10.0), patience=50)
    with pytest.raises(ConfigError) as info:
        sampler.sample(SPACE)
    assert info.value.field == "training.sampling_constraint"
    assert "50" in str(info.value)


# ---------------------------------------------------------------------------------------------- strict fair
@pytest.mark.parametrize("seed", range(5))
def test_strict_fair_each_choice_exactly_once(seed):
    sampler = StrictFairPathSampler(seed=seed)
    paths = sampler.sample(SPACE)
    assert len(paths) == 5
    for label, choices in SPACE.items():
        assert sorted(p[label] for p in paths) == sorted(choices)


def test_strict_fair_paths_vary_between_steps():
    sampler = StrictFairPathSampler(seed=0)
    steps = [tuple(_key(p) for p in sampler.sample(SPACE)) for _ in range(10)]
    assert len(set(steps)) > 1


@pytest.mark.parametrize("seed", range(5))
def test_strict_fair_padding_uneven_labels(seed):
    sampler = StrictFairPathSampler(seed=seed)
    paths = sampler.sample(UNEVEN)
    m = max(len(c) for c in UNEVEN.values())
    assert len(paths) == m
    for label, choices in UNEVEN.items():
        counts = collections.Counter(p[label] for p in paths)
        assert set(counts) == set(choices), label  # every choice at least once, nothing foreign
        assert sum(counts.values()) == m
        if len(choices) == m:
            assert all(c == 1 for c in counts.values())


def test_strict_fair_paths_per_step_override():
    paths = StrictFairPathSampler(seed=0, paths_per_step=8).sample(SPACE)
    assert len(paths) == 8
    for label, choices in SPACE.items():
        assert set(p[label] for p in paths) == set(choices)


# ---------------------------------------------------------------------------------------------- cluster fair
@pytest.mark.parametrize("seed", range(5))
def test_cluster_fair_shares_cluster_value(seed):
    sampler = ClusterFairPathSampler(["e2"], seed=seed)
    paths = sampler.sample(SPACE)
    assert len(paths) == 5
    assert len({p["e2"] for p in paths}) == 1
    for label, choices in SPACE.items():
        if label == "e2":
            continue
        assert sorted(p[label] for p in paths) == sorted(choices)


def test_cluster_fair_visits_every_cluster():
    sampler = ClusterFairPathSampler(["e0"], seed=0)
    clusters = collections.Counter(sampler.sample(SPACE)[0]["e0"] for _ in range(200))
    assert set(clusters) == set(SPACE["e0"])
    assert min(clusters.values()) > 15


def test_cluster_fair_several_labels():
    sampler = ClusterFairPathSampler(["e0", "e3"], seed=2)
    for _ in range(5):
        paths = sampler.sample(SPACE)
        assert len({(p["e0"], p["e3"]) for p in paths}) == 1
        for label in ("e1", "e2"):
            assert sorted(p[label] for p in paths) == sorted(SPACE[label])


def test_cluster_fair_state_round_trip():
    sampler = ClusterFairPathSampler(["e1"], seed=4)
    sampler.sample(SPACE)
    state = sampler.state_dict()
    expected = [sampler.sample(SPACE) for _ in range(5)]
    other = ClusterFairPathSampler(["e1"], seed=0)
    other.load_state_dict(state)
    assert [other.sample(SPACE) for _ in range(5)] == expected


def test_samplers_respect_restricted_leaf_space():
    # Inside a few-shot leaf a label has a single allowed choice.
    leaf = {**SPACE, "e0": ["c3"]}
    for sampler in (UniformPathSampler(seed=0), StrictFairPathSampler(seed=0), ClusterFairPathSampler(["e1"], seed=0)):
        for _ in range(5):
            assert all(p["e0"] == "c3" for p in sampler.sample(leaf))
