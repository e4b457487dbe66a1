"""Tests of PA (path importance sampling), its wiring into the step, and PA&DA end to end."""
from __future__ import annotations

import collections
import io
import json
import math
import pickle
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet.data.smoothing import SmoothingSchedule
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules, shared_labels
from nni_dynamic_supernet.training.build import build_engine, partition_for
from nni_dynamic_supernet.training.paths.importance import importance_path_sampler
from nni_dynamic_supernet.training.paths.importance import ImportancePathSampler

torch.set_num_threads(1)

OPS = ["none", "skip", "c1", "c3", "pool"]
SPACE = {f"e{i}": list(OPS) for i in range(3)}
UNIFORM = [0.2] * 5


def _probs(sampler, label):
    return [sampler.probabilities()[label][op] for op in SPACE[label]]


# ---------------------------------------------------------------------------------------------- closed form
def test_shared_distribution_matches_closed_form():
    s = ImportancePathSampler(SPACE, shared_across_labels=True)
    # Step 1: c3 on two edges (norms 2 and 4: s = 6 / 2 = 3), c1 on one (s = 1).
    s.observe([{"e0": "c3", "e1": "c3", "e2": "c1"}], {("e0", "c3"): 2.0, ("e1", "c3"): 4.0, ("e2", "c1"): 1.0})
    # Step 2: parameter-free ops record 0 and keep h = 0.
    s.observe([{"e0": "c1", "e1": "none", "e2": "c3"}], {("e0", "c1"): 3.0, ("e1", "none"): 0.0, ("e2", "c3"): 5.0})
    h = {"c3": ((0 + 3) / 2 + 5) / 2, "c1": ((0 + 1) / 2 + 3) / 2}  # pairwise running mean from 0
    s.on_epoch_end(2, 4)  # delta = 1/2
    total = sum(h.values())
    expected = [0.5 * h.get(op, 0.0) / total + 0.5 * 0.2 for op in OPS]
    for label in SPACE:
        assert _probs(s, label) == pytest.approx(expected, abs=1e-15)
    assert s.epoch_metrics()["pa_delta"] == 0.5
    assert s.epoch_metrics()["pa_prob/none"] == pytest.approx(0.1)  # only the uniform share
    # Accumulators restart every epoch: no observation -> uniform, whatever delta.
    s.on_epoch_end(3, 4)
    assert _probs(s, "e0") == UNIFORM


def test_per_label_distribution_matches_closed_form():
    s = ImportancePathSampler(SPACE, shared_across_labels=False)
    s.observe([{"e0": "c3", "e1": "c3", "e2": "c1"}], {("e0", "c3"): 2.0, ("e1", "c3"): 4.0, ("e2", "c1"): 1.0})
    s.observe([{"e0": "c1", "e1": "c3", "e2": "pool"}], {("e0", "c1"): 6.0, ("e1", "c3"): 0.0})  # 0: kept
    s.on_epoch_end(1, 4)  # delta = 1/4
    h = {"e0": {"c3": 1.0, "c1": 3.0}, "e1": {"c3": 2.0}, "e2": {"c1": 0.5}}
    for label in SPACE:
        total = sum(h[label].values())
        expected = [0.25 * h[label].get(op, 0.0) / total + 0.75 * 0.2 for op in OPS]
        assert _probs(s, label) == pytest.approx(expected, abs=1e-15)


def test_delta_zero_is_exactly_uniform():
    s = ImportancePathSampler(SPACE, shared_across_labels=True, delta=SmoothingSchedule("constant", 0.0))
    for _ in range(5):
        s.observe([{"e0": "c3", "e1": "c1", "e2": "c3"}], {("e0", "c3"): 9.0, ("e1", "c1"): 0.1, ("e2", "c3"): 7.0})
    s.on_epoch_end(5, 10)
    assert all(_probs(s, label) == UNIFORM for label in SPACE)
    first = ImportancePathSampler(SPACE).probabilities()  # before any update: uniform too
    assert all(list(p.values()) == UNIFORM for p in first.values())


def test_sampling_frequencies_follow_the_distribution():
    s = ImportancePathSampler(SPACE, seed=1, shared_across_labels=True, delta=SmoothingSchedule("constant", 0.8))
    s.observe([{"e0": "c3", "e1": "c1", "e2": "c3"}], {("e0", "c3"): 6.0, ("e1", "c1"): 2.0, ("e2", "c3"): 6.0})
    s.on_epoch_end(0, 1)
    counts = collections.Counter(op for _ in range(20000) for op in s.sample(SPACE)[0].values())
    freq = [counts[op] / 60000 for op in OPS]
    assert freq == pytest.approx(_probs(s, "e0"), abs=0.01)


def test_restricted_leaf_space_renormalises():
    s = ImportancePathSampler(SPACE, shared_across_labels=True, delta=SmoothingSchedule("constant", 1.0))
    s.observe([{"e0": "c3", "e1": "c1", "e2": "c1"}], {("e0", "c3"): 6.0, ("e1", "c1"): 2.0, ("e2", "c1"): 2.0})
    s.on_epoch_end(0, 1)  # p = c3: 3/4, c1: 1/4, parameter-free: 0 (delta = 1)
    leaf = {**SPACE, "e0": ["c1", "c3"]}
    counts = collections.Counter(s.sample(leaf)[0]["e0"] for _ in range(4000))
    assert set(counts) == {"c1", "c3"}
    assert counts["c3"] / 4000 == pytest.approx(0.75, abs=0.03)
    counts = collections.Counter(s.sample(SPACE)[0]["e1"] for _ in range(2000))
    assert set(counts) <= {"c1", "c3"}  # probability 0 is never drawn


def test_reweighting_is_the_inverse_importance_ratio():
    s = ImportancePathSampler(SPACE, shared_across_labels=True, delta=SmoothingSchedule("constant", 0.5), reweight=True)
    s.observe([{"e0": "c3", "e1": "c1", "e2": "c1"}], {("e0", "c3"): 6.0, ("e1", "c1"): 2.0, ("e2", "c1"): 2.0})
    s.on_epoch_end(0, 1)
    arch = s.sample(SPACE)[0]
    expected = math.prod(1.0 / (5 * s.probabilities()[label][op]) for label, op in arch.items())
    assert s.loss_weight(arch) == pytest.approx(expected)
    assert s.loss_weight({"e0": "none", "e1": "none", "e2": "none"}) == pytest.approx(1 / (5 * 0.1) ** 3)
    assert ImportancePathSampler(SPACE).loss_weight(arch) == 1.0  # off by default


def test_state_round_trip_continues_identically():
    a = ImportancePathSampler(SPACE, seed=4, shared_across_labels=False)
    a.observe([{"e0": "c3", "e1": "c1", "e2": "c1"}], {("e0", "c3"): 6.0, ("e1", "c1"): 2.0, ("e2", "c1"): 2.0})
    a.on_epoch_end(1, 3)
    a.sample(SPACE)
    a.observe([{"e0": "c1", "e1": "c3", "e2": "c1"}], {("e0", "c1"): 1.0, ("e1", "c3"): 2.0})  # mid-epoch
    b = ImportancePathSampler(SPACE, seed=99, shared_across_labels=False)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert [a.sample(SPACE) for _ in range(20)] == [b.sample(SPACE) for _ in range(20)]
    for s in (a, b):
        s.on_epoch_end(2, 3)
    assert a.probabilities() == b.probabilities() and a.history == b.history


def test_reduce_fn_receives_accumulators_in_key_order():
    got = {}

    def reduce(values):
        got["values"] = values.clone()
        return values * 0 + torch.tensor([0.0, 0.0, 1.0, 3.0, 0.0], dtype=torch.float64)  # another rank's mean

    s = ImportancePathSampler(SPACE, shared_across_labels=True, delta=SmoothingSchedule("constant", 1.0),
                              reduce_fn=reduce)
    s.observe([{"e0": "c3", "e1": "c1", "e2": "c1"}], {("e0", "c3"): 2.0, ("e1", "c1"): 4.0, ("e2", "c1"): 4.0})
    s.on_epoch_end(0, 1)
    assert s.keys == OPS and got["values"].tolist() == [0.0, 0.0, 2.0, 1.0, 0.0]
    assert _probs(s, "e1") == [0.0, 0.0, 0.25, 0.75, 0.0]


def test_shared_mode_default_follows_the_space_kind():
    recipe = Recipe.from_dict({"strategy": "spos_pa"})
    assert importance_path_sampler(recipe.training, SPACE, shared=set(SPACE), seed=0).shared_across_labels  # cell
    assert not importance_path_sampler(recipe.training, SPACE, shared=set(), seed=0).shared_across_labels  # chain
    forced = Recipe.from_dict({"strategy": "spos_pa"}, {"training.pa_shared_across_labels": False})
    assert not importance_path_sampler(forced.training, SPACE, shared=set(SPACE), seed=0).shared_across_labels


def test_recipe_validation():
    assert Recipe.from_dict({"strategy": "pada"}).training.data_sampler == "importance"
    assert Recipe.from_dict({"strategy": "pada"}, {"strategy": "spos"}).training.data_sampler == "uniform"
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"strategy": "spos"}, {"training.importance_reweight": True})
    assert info.value.field == "training.importance_reweight"
    with pytest.raises(ConfigError):
        Recipe.from_dict({"strategy": "pada"}, {"training.da_tau_max": 1.5})
    with pytest.raises(ConfigError):
        Recipe.from_dict({"strategy": "pada"}, {"training.pa_delta_schedule": "cubic"})
    with pytest.raises(ConfigError):
        Recipe.from_dict({"strategy": "spos_pa"}, {"training.paths_per_step": 3})


# ---------------------------------------------------------------------------------------------- in the engine
TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)


def _engine(recipe):
    torch.manual_seed(0)
    supernet = mutate_to_supernet(create_space("nas_bench_201", **TINY))
    partition = partition_for(recipe.training, supernet, seed=recipe.seed)
    t = recipe.training
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05, momentum=t.momentum, weight_decay=t.weight_decay)
    return build_engine(recipe.training, [supernet], [arch_setter(supernet)], optimizer, partition, 20,
                        shared_labels(supernet), op_modules=[op_modules(supernet)], seed=recipe.seed)


def _batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g), torch.arange(n)


def _conv_params(module):
    """The official PA&DA op norm's tensors: the op's convolution weight and bias (``op[1]`` of ReLUConvBN)."""
    return [p for m in module.modules() if isinstance(m, torch.nn.Conv2d) for p in (m.weight, m.bias) if p is not None]


@pytest.mark.parametrize("which", ["conv", "all"])
def test_engine_records_post_clip_norms_of_the_path(which):
    clip = 1e-3
    engine = _engine(Recipe.from_dict({"strategy": "spos_pa"}, {"training.grad_clip": clip,
                                                                 "training.pa_op_norm": which}))
    assert isinstance(engine.path_sampler, ImportancePathSampler) and engine.path_sampler.shared_across_labels
    recorded = []
    engine.path_sampler.observe = lambda paths, norms: recorded.append((paths, norms))
    engine.train_step(_batch(), 0)
    (paths, norms), = recorded
    arch = paths[0]
    grads = [p.grad for p in engine.params if p.grad is not None]
    assert float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) <= clip * 1.0001
    tensors = _conv_params if which == "conv" else (lambda m: list(m.parameters()))
    for label, choice in arch.items():  # independent recomputation from .grad after the step
        expected = sum(float(p.grad.norm()) for lab, ch, m in op_modules(engine.models[0]) if (lab, ch) == (label, choice)
                       for p in tensors(m) if p.grad is not None)
        assert norms[(label, choice)] == pytest.approx(expected, rel=1e-5, abs=1e-12)
    assert any(v > 0 for v in norms.values()) or all(v in ("none", "skip_connect", "avg_pool_3x3")
                                                      for v in arch.values())


def test_op_norm_defaults_to_the_official_conv_tensors_and_leaves_out_bn_affine():
    assert Recipe.from_dict({"strategy": "pada"}).training.pa_op_norm == "conv"
    engine = _engine(Recipe.from_dict({"strategy": "spos_pa"}))
    conv3 = [m for lab, ch, m in op_modules(engine.models[0]) if ch == "conv_3x3"][0]
    has_bn = [p for m in conv3.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()]
    table = engine._op_param_table(0)
    ids = {id(p) for params in table.values() for p in params}
    assert has_bn and not any(id(p) in ids for p in has_bn)  # BN gamma/beta are not in the op norm
    assert {id(p) for p in _conv_params(conv3)} <= ids


def test_reweighting_goes_through_the_update_rule():
    base = {"training.grad_clip": None, "training.weight_decay": 0.0, "training.pa_delta_schedule": "constant",
            "training.pa_delta_max": 0.9}
    grads = {}
    for reweight in (False, True):
        engine = _engine(Recipe.from_dict({"strategy": "spos_pa"}, {**base, "training.importance_reweight": reweight}))
        sampler = engine.path_sampler
        sampler.observe([{label: "conv_3x3" for label in sampler.space}],
                        {(label, "conv_3x3"): 1.0 for label in sampler.space})
        sampler.on_epoch_end(0, 1)
        engine.train_step(_batch(), 0)
        grads[reweight] = (engine.models[0].classifier.weight.grad.clone(), sampler.loss_weight(engine.last_paths[0]))
    (g0, w0), (g1, w1) = grads[False], grads[True]
    assert w0 == 1.0 and w1 != pytest.approx(1.0)
    assert torch.allclose(g1, g0 * w1, rtol=1e-4, atol=1e-8)


def test_engine_state_round_trip_with_both_samplers():
    from nni_dynamic_supernet.data.samplers import build_data_sampler
    recipe = Recipe.from_dict({"strategy": "pada"})
    engines = []
    for _ in range(2):
        engine = _engine(recipe)
        engine.data_sampler = build_data_sampler(recipe.training, 8, seed=recipe.seed)
        engines.append(engine)
    a, b = engines
    for step in range(3):
        a.train_step(_batch(step), step)
    a.path_sampler.on_epoch_end(0, 4)
    a.data_sampler.on_epoch_end(0, 4)
    a.train_step(_batch(9), 3)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=False))
    assert a.path_sampler.probabilities() == b.path_sampler.probabilities()
    assert [a.path_sampler.sample(a.partition.space) for _ in range(5)] == \
        [b.path_sampler.sample(b.partition.space) for _ in range(5)]
    assert list(a.data_sampler) == list(b.data_sampler)


# ---------------------------------------------------------------------------------------------- end to end
def test_pada_end_to_end_reports_sampling_diagnostics(tmp_path: Path):
    from nni_dynamic_supernet.pipeline import run_recipe
    recipe = Recipe.from_dict({
        "strategy": "pada", "seed": 0,
        "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 2, "max_steps_per_epoch": 3, "num_threads": 1},
        "search": {"searcher": "random", "max_evaluations": 2, "bn_batches": 1},
        "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 2},
        "output": {"tensorboard": False},
    })
    results = run_recipe(recipe, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    history = on_disk["training"]["history"]
    assert [row["pa_delta"] for row in history] == [0.0, 0.5]
    assert [row["da_tau"] for row in history] == [0.0, 0.5]
    assert sum(history[0][f"pa_prob/{op}"] for op in ("none", "skip_connect", "conv_1x1", "conv_3x3",
                                                      "avg_pool_3x3")) == pytest.approx(1.0)
    assert history[0]["da_entropy_ratio"] == pytest.approx(1.0)
    assert all(math.isfinite(row["grad_variance"]) and row["grad_variance"] > 0 for row in
               on_disk["diagnostics"]["epochs"])
    assert len(on_disk["sampling"]["paths"]["history"]) == 2 and on_disk["sampling"]["paths"]["shared_across_labels"]
    assert on_disk["sampling"]["data"]["kind"] == "importance"
    assert results["training"]["steps"] == 6
    assert (tmp_path / "sampling_diagnostics.png").is_file()
