"""Tests of the data samplers: uniform per-epoch permutations and DA (PA&DA data importance sampling)."""
from __future__ import annotations

import io
import math
import pickle
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nni_dynamic_supernet.data import IndexedDataset
from nni_dynamic_supernet.data.samplers import ImportanceDataSampler, UniformDataSampler, pairwise_running_mean
from nni_dynamic_supernet.data.smoothing import SmoothingSchedule
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.training.engine import SupernetEngine

torch.set_num_threads(1)


def _observe_all(sampler, n, seed=0, batch=16, epoch_indices=None):
    """Feed one epoch of random scores for the sampler's own indices; returns the (index, score) pairs fed."""
    g = torch.Generator().manual_seed(seed)
    order = torch.tensor(list(sampler)) if epoch_indices is None else epoch_indices
    fed = []
    for start in range(0, len(order), batch):
        index = order[start:start + batch]
        scores = torch.rand(len(index), generator=g)
        sampler.observe(index, scores)
        fed.append((index, scores))
    return fed


# ---------------------------------------------------------------------------------------------- uniform
def test_uniform_is_a_permutation_per_epoch_determined_by_seed_and_epoch():
    a, b = UniformDataSampler(100, seed=3), UniformDataSampler(100, seed=3)
    first = list(a)
    assert sorted(first) == list(range(100)) and len(a) == 100
    assert first == list(b)
    a.set_epoch(1)
    second = list(a)
    assert sorted(second) == list(range(100)) and second != first
    assert list(a) == second  # iterating again changes nothing
    assert list(UniformDataSampler(100, seed=4)) != first


def test_uniform_epoch_advances_and_survives_state_round_trip():
    a = UniformDataSampler(50, seed=1)
    a.on_epoch_end(0, 10)
    a.on_epoch_end(1, 10)
    b = UniformDataSampler(50, seed=1)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert b.epoch == 2 and list(b) == list(a)


def test_ddp_shards_are_disjoint_and_cover_the_common_list():
    shards = [list(UniformDataSampler(103, seed=0, num_replicas=4, rank=r)) for r in range(4)]
    assert all(len(s) == 103 // 4 for s in shards)
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == len(flat) == 100
    with pytest.raises(ConfigError):
        UniformDataSampler(10, num_replicas=2, rank=2)


# ---------------------------------------------------------------------------------------------- importance scores
def test_example_scores_match_brute_force_logit_gradients():
    """The engine's importance is ||d CE / d z||_2 = ||softmax(z) - onehot(y)||_2, computed per example by autograd."""
    torch.manual_seed(0)
    logits, y = torch.randn(12, 7) * 3, torch.randint(0, 7, (12,))
    index = torch.arange(100, 112)
    sampler = ImportanceDataSampler(200)
    SupernetEngine.observe_examples(SimpleNamespace(data_sampler=sampler), index, logits, y)
    got_index, got = sampler._pending[0]
    expected = []
    for i in range(len(y)):
        z = logits[i:i + 1].clone().requires_grad_(True)
        F.cross_entropy(z, y[i:i + 1]).backward()
        expected.append(float(z.grad.norm()))
    assert torch.equal(got_index, index)
    assert got.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_uniform_sampler_gets_no_scores():
    sampler = UniformDataSampler(10)
    assert not sampler.needs_example_scores
    engine = SimpleNamespace(data_sampler=sampler)
    SupernetEngine.observe_examples(engine, torch.arange(2), torch.randn(2, 3), torch.tensor([0, 1]))  # no error


def test_pairwise_running_mean_matches_the_official_sequential_rule():
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 20, (300,), generator=g)  # many duplicates, in arbitrary order
    values = torch.rand(300, generator=g, dtype=torch.float64)
    mean, seen = pairwise_running_mean(index, values, 25)
    expected = [0.0] * 25
    first = [True] * 25
    for i, v in zip(index.tolist(), values.tolist()):
        expected[i] = v if first[i] else (expected[i] + v) / 2
        first[i] = False
    assert mean.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert seen.tolist() == [not f for f in first]


# ---------------------------------------------------------------------------------------------- DA distribution
def test_epoch_zero_is_the_uniform_permutation():
    assert list(ImportanceDataSampler(64, seed=5)) == list(UniformDataSampler(64, seed=5))


def test_distribution_matches_closed_form():
    n = 40
    sampler = ImportanceDataSampler(n, seed=0, tau=SmoothingSchedule("linear"), unseen="zero")
    fed = _observe_all(sampler, n)
    sampler.on_epoch_end(3, 8)  # tau = 3/8
    v, _ = pairwise_running_mean(torch.cat([i for i, _ in fed]), torch.cat([s for _, s in fed]).double(), n)
    tau = 3 / 8
    expected = tau * v / v.sum() + (1 - tau) / n
    assert torch.allclose(sampler.probs, expected, rtol=0, atol=1e-15)
    assert sampler.epoch == 4
    assert sampler.epoch_metrics()["da_tau"] == tau
    assert sampler.epoch_metrics()["da_entropy"] == pytest.approx(float(-(expected * expected.log()).sum()))


def test_tau_zero_is_exactly_uniform_and_draws_with_replacement():
    n = 1000
    sampler = ImportanceDataSampler(n, seed=0, tau=SmoothingSchedule("constant", 0.0))
    _observe_all(sampler, n)
    sampler.on_epoch_end(0, 5)
    assert torch.equal(sampler.probs, torch.full((n,), 1.0 / n, dtype=torch.float64))
    drawn = list(sampler)
    assert len(drawn) == n and all(0 <= i < n for i in drawn)
    assert len(set(drawn)) < n  # with replacement: about 1/e of the examples are missing


def test_draws_follow_q():
    n = 8
    sampler = ImportanceDataSampler(n, seed=0, tau=SmoothingSchedule("constant", 1.0))
    sampler.observe(torch.arange(n), torch.arange(1, n + 1, dtype=torch.float32))
    sampler.on_epoch_end(0, 1)
    counts = torch.zeros(n)
    for epoch in range(1, 1501):
        counts += torch.bincount(sampler.indices(epoch), minlength=n)
    freq = counts / counts.sum()
    assert torch.allclose(freq.double(), sampler.probs, atol=0.01)


@pytest.mark.parametrize("unseen", ["keep", "zero"])
def test_no_example_falls_to_probability_zero(unseen):
    n, epochs = 500, 10
    sampler = ImportanceDataSampler(n, seed=0, unseen=unseen)
    for epoch in range(epochs):
        order = torch.tensor(list(sampler))[: n // 4]  # a quarter of the epoch (max_steps_per_epoch)
        sampler.observe(order, torch.where(order % 7 == 0, torch.zeros(len(order)), torch.rand(len(order))))
        sampler.on_epoch_end(epoch, epochs)
        assert bool((sampler.probs > 0).all())
    assert sampler.history[-1]["tau"] == (epochs - 1) / epochs


def test_unseen_policies():
    n = 6
    keep = ImportanceDataSampler(n, tau=SmoothingSchedule("constant", 1.0), unseen="keep")
    zero = ImportanceDataSampler(n, tau=SmoothingSchedule("constant", 1.0), unseen="zero")
    for s in (keep, zero):
        s.observe(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 3.0]))
        s.on_epoch_end(0, 2)
    # Never drawn: the mean score of the others, i.e. exactly the uniform share 1/N of the mass.
    assert keep.probs[3:].tolist() == pytest.approx([1 / n] * 3)
    assert zero.probs[3:].tolist() == [0.0] * 3  # official rule: only the uniform mass, here tau = 1
    for s in (keep, zero):
        s.observe(torch.tensor([3]), torch.tensor([4.0]))
        s.on_epoch_end(1, 2)
    assert keep.scores[:4].tolist() == [1.0, 2.0, 3.0, 4.0]  # 0..2 keep their last score
    assert zero.scores[:4].tolist() == [0.0, 0.0, 0.0, 4.0]


def test_state_round_trip_continues_identically():
    n = 300
    a = ImportanceDataSampler(n, seed=2)
    _observe_all(a, n, seed=0)
    a.on_epoch_end(0, 6)
    a.set_epoch(1)
    _observe_all(a, n, seed=1, epoch_indices=torch.tensor(list(a))[:100])  # mid-epoch checkpoint
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = ImportanceDataSampler(n, seed=2)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert list(b) == list(a)
    rest = torch.tensor(list(a))[100:]
    for s in (a, b):
        _observe_all(s, n, seed=2, epoch_indices=rest)
        s.on_epoch_end(1, 6)
    assert torch.equal(a.probs, b.probs)
    assert torch.equal(a.scores.nan_to_num(-1.0), b.scores.nan_to_num(-1.0))  # NaN: never drawn
    assert list(a) == list(b) and a.history == b.history


def test_reduce_fn_sees_every_observation():
    seen = {}

    def gather(index, scores):
        seen["n"] = len(index)
        return torch.cat([index, index]), torch.cat([scores, scores])  # a second rank with the same data

    sampler = ImportanceDataSampler(10, reduce_fn=gather, tau=SmoothingSchedule("constant", 1.0))
    sampler.observe(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))
    sampler.observe(torch.tensor([2]), torch.tensor([2.0]))
    sampler.on_epoch_end(0, 1)
    assert seen["n"] == 3
    assert sampler.scores[:3].tolist() == [1.0, 3.0, 2.0]  # (u + u) / 2 == u


def test_dataloader_yields_the_samplers_indices():
    n = 20
    data = IndexedDataset(TensorDataset(torch.randn(n, 3), torch.randint(0, 2, (n,))))
    sampler = ImportanceDataSampler(n, seed=0)
    loader = DataLoader(data, batch_size=5, sampler=sampler, drop_last=True)
    got = torch.cat([batch[2] for batch in loader]).tolist()
    assert got == list(sampler)
    sampler.observe(torch.arange(n), torch.rand(n))
    sampler.on_epoch_end(0, 3)
    assert torch.cat([batch[2] for batch in loader]).tolist() == list(sampler.indices(1).tolist())


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError):
        ImportanceDataSampler(10, unseen="forget")
    with pytest.raises(ConfigError):
        SmoothingSchedule("cubic")
    with pytest.raises(ConfigError):
        SmoothingSchedule("linear", 1.5)
    assert math.isclose(SmoothingSchedule("decreasing")(1, 4), 0.75)


def test_default_unseen_rule_is_the_official_per_epoch_reset():
    """Paper section 3.4 and train_panda_201.py: scores restart at 0 every epoch; an undrawn example scores 0."""
    import numpy as np
    from nni_dynamic_supernet.recipe import Recipe
    assert Recipe().training.da_unseen == "zero" and Recipe.from_dict({"strategy": "pada"}).training.da_unseen == "zero"
    n, tau = 6, 0.7
    sampler = ImportanceDataSampler(n, tau=SmoothingSchedule("constant", tau))
    assert sampler.unseen == "zero"
    epochs = [([0, 1, 2, 3, 4, 5, 1], [0.5, 1.0, 2.0, 0.25, 3.0, 1.5, 3.0]),
              ([0, 0, 2, 3], [1.0, 2.0, 0.5, 4.0])]  # 1, 4 and 5 not drawn in the second epoch
    for epoch, (index, values) in enumerate(epochs):
        sampler.observe(torch.tensor(index), torch.tensor(values))
        sampler.on_epoch_end(epoch, 10)
        official = np.zeros(n)
        for i, g in zip(index, values):
            official[i] = np.mean([official[i], g]) if official[i] != 0 else g
        expected = official / official.sum() * tau + (1 - tau) * np.full(n, 1.0 / n)
        assert sampler.probs.tolist() == pytest.approx(expected.tolist(), rel=1e-12)
    assert sampler.probs[[1, 4, 5]].tolist() == pytest.approx([(1 - tau) / n] * 3)
