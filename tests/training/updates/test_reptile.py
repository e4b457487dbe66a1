"""Tests of the Reptile (SUMNAS) update rule.

(a) with k = 1 it is FairNAS, step by step; (b) on a tiny linear supernet one step equals a
hand-computed update; (c) each path's contribution equals an isolated run of that path from
the shared weights (snapshot and restore leak nothing between paths). Runs are built the way
the pipeline builds them: ``Recipe.from_dict`` -> ``pipeline.prepare`` -> ``build_engine``.
"""
from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.pipeline import prepare
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet, op_modules, shared_labels
from nni_dynamic_supernet.training.build import build_engine, partition_for
from nni_dynamic_supernet.training.updates.reptile import ReptileStep, default_inner_lr
from tests.tiny_recipe import tiny_recipe

torch.set_num_threads(1)

#: The suite's tiny recipe (2-channel one-cell NAS-Bench-201 on digits_hard, 8 training batches of 16).
BASE = tiny_recipe(output={"diagnostics": False})
TOTAL = 50


def _run(strategy: str, **overrides):
    recipe = Recipe.from_dict({**BASE, "strategy": strategy}, overrides)
    run = prepare(recipe)
    run.module.build_engine(TOTAL)
    return run


def _batches(run, n):
    out = []
    for batch in run.loader("train", shuffle=True, drop_last=True):
        out.append(batch)
        if len(out) == n:
            return out
    raise AssertionError("not enough batches")


# ---------------------------------------------------------------------------------------------- (a) k = 1 is FairNAS
@pytest.mark.parametrize("variant", ["plain", "calr_ms"])
def test_k1_equals_fairnas_step_by_step(variant):
    """SUMNAS(k=1, eps0, eps1) = FairNAS(LR eps0*eps1) with the outer optimizer's wd scaled by eps1.

    With momentum mu the outer buffer is eps1 times FairNAS's when wd_sumnas = eps1 * wd_fairnas,
    so outer momentum and Nesterov are covered too; ``calr_ms`` adds CaLR path weights and MS.
    """
    eps0, eps1, wd = 0.5, 0.2, 5e-4
    common = {"training.momentum": 0.9, "training.nesterov": True, "training.grad_clip": None,
              "training.lr_schedule": "cosine"}
    fair_name, sum_name = ("fairnas", "sumnas") if variant == "plain" else ("fairnas_calr_ms", "sumnas_ms")
    extra = {} if variant == "plain" else {"training.lr_policy": "calr"}
    # The same policy for unused gradients on both sides (fairnas_calr_ms follows DYNAS's zeros by default).
    fair = _run(fair_name, **common, **{"training.lr": eps0 * eps1, "training.weight_decay": wd,
                                        "training.unused_grads": "none"})
    sumn = _run(sum_name, **common, **extra, **{"training.lr": eps0, "training.weight_decay": wd * eps1,
                                               "training.reptile_steps": 1, "training.inner_grad_clip": None})
    assert sumn.module.engine.update_rule.inner_lr == pytest.approx(eps1)  # default 0.05 * 4 / 1
    fe, se = fair.module.engine, sumn.module.engine
    for step, batch in enumerate(_batches(fair, 3)):
        lf = fe.train_step(batch, step)
        ls = se.train_step(batch, step)
        assert fe.last_paths == se.last_paths
        assert torch.allclose(lf, ls, rtol=1e-6, atol=1e-7)
        for (name, pf), ps in zip(fair.models[0].named_parameters(), sumn.models[0].parameters()):
            assert torch.allclose(pf, ps, rtol=1e-5, atol=1e-6), (step, name, (pf - ps).abs().max())
        for (name, bf), bs in zip(fair.models[0].named_buffers(), sumn.models[0].buffers()):
            assert torch.allclose(bf.float(), bs.float(), rtol=1e-5, atol=1e-7), (step, name)
    assert fe.last_lr == pytest.approx(se.last_lr * eps1)


# ---------------------------------------------------------------------------------------------- (b) hand-computed
def _linear_space():
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from torch import nn

    class LinearSupernet(ModelSpace):
        def __init__(self):
            super().__init__()
            self.op = LayerChoice([nn.Linear(3, 2, bias=False), nn.Linear(3, 2, bias=False)], label="op")
            self.head = nn.Linear(2, 2, bias=False)

        def forward(self, x):
            return self.head(self.op(x))

    return LinearSupernet()


def _ce_grads(a, h, x, y):
    """Closed-form gradients of mean cross-entropy of ``softmax(x a^T h^T)`` w.r.t. ``a`` and ``h``."""
    z1 = x @ a.T
    z = z1 @ h.T
    g = (torch.softmax(z, dim=1) - F.one_hot(y, 2).float()) / len(y)
    return (g @ h).T @ x, g.T @ z1


@pytest.mark.parametrize("inner_state", ["reset", "persistent"])
def test_one_step_on_linear_supernet_matches_hand_computation(inner_state):
    torch.manual_seed(0)
    model = mutate_to_supernet(_linear_space())
    eps0, eps1, mu, wd, k = 0.5, 0.1, 0.9, 0.01, 2
    recipe = Recipe.from_dict({"strategy": "sumnas", "seed": 3}, {
        "training.reptile_steps": k, "training.inner_lr": eps1, "training.inner_grad_clip": None,
        "training.lr_schedule": "constant", "training.inner_state": inner_state})
    optimizer = torch.optim.SGD(model.parameters(), lr=eps0, weight_decay=wd)
    engine = build_engine(recipe.training, [model], [arch_setter(model)], optimizer,
                          partition_for(recipe.training, model, seed=recipe.seed), 10, shared_labels(model),
                          op_modules=[op_modules(model)], seed=recipe.seed)
    cands = {name: model.op[name].weight for name in model.op.names}
    h0 = model.head.weight.detach().clone()
    a0 = {name: w.detach().clone() for name, w in cands.items()}
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)

    engine.train_step((x, y), 0)
    paths = engine.last_paths
    assert sorted(str(p["op"]) for p in paths) == sorted(str(n) for n in cands)

    # Hand computation: per path, k SGD-with-momentum steps from theta; sum of theta - theta_i.
    diff_h = torch.zeros_like(h0)
    diff_a = {}
    buf_h = None  # the head's inner momentum: carried across paths only when persistent
    for arch in paths:
        name = arch["op"]
        a, h = a0[name].clone(), h0.clone()
        buf_a = None
        if inner_state == "reset":
            buf_h = None
        for _ in range(k):
            ga, gh = _ce_grads(a, h, x, y)
            buf_a = ga if buf_a is None else mu * buf_a + ga
            buf_h = gh if buf_h is None else mu * buf_h + gh
            a, h = a - eps1 * buf_a, h - eps1 * buf_h
        diff_a[name] = a0[name] - a
        diff_h += h0 - h
    expect_h = h0 - eps0 * (diff_h + wd * h0)
    assert torch.allclose(model.head.weight, expect_h, rtol=1e-5, atol=1e-7)
    for name, w in cands.items():
        assert torch.allclose(w, a0[name] - eps0 * (diff_a[name] + wd * a0[name]), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------- (c) isolation
@pytest.mark.parametrize("inner_batches,clip", [("same", None), ("split", 0.05)])
def test_each_path_contributes_exactly_its_isolated_adaptation(inner_batches, clip):
    """Path i's contribution equals an isolated k = 3 run of path i from theta (torch's own SGD).

    A leaking restore (path i+1 starting from theta_i) or a missed snapshot would break the sum on the
    shared weights and the per-op differences. The clip 0.05 forces inner clipping on every step.
    """
    k, eps1 = 3, 0.07
    run = _run("sumnas", **{"training.reptile_steps": k, "training.inner_lr": eps1, "training.inner_grad_clip": clip,
                            "training.inner_batches": inner_batches})
    engine, model = run.module.engine, run.models[0]
    x, y = _batches(run, 1)[0][:2]
    theta = copy.deepcopy(model)
    captured = {}
    step_fn = engine.step_fn

    def capture_then_step():
        for name, p in model.named_parameters():
            captured[name] = None if p.grad is None else p.grad.detach().clone()
        step_fn()
    engine.step_fn = capture_then_step
    engine.train_step((x, y), 0)
    paths = engine.last_paths
    assert len(paths) == 5  # NB201: 5 ops per edge

    chunks = list(zip(x.tensor_split(k), y.tensor_split(k))) if inner_batches == "split" else [(x, y)] * k
    expected = {name: torch.zeros_like(p) for name, p in theta.named_parameters()}
    per_path = []
    for arch in paths:
        alone = copy.deepcopy(theta)
        arch_setter(alone)(arch)
        alone.train()
        opt = torch.optim.SGD(alone.parameters(), lr=eps1, momentum=0.9)
        for xj, yj in chunks:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(alone(xj), yj).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_([p for p in alone.parameters() if p.grad is not None], clip)
            opt.step()
        diff = {name: p0.detach() - p.detach()
                for (name, p0), p in zip(theta.named_parameters(), alone.parameters())}
        per_path.append(diff)
        for name in expected:
            expected[name] += diff[name]
    moved = 0
    for name, acc in captured.items():
        got = torch.zeros_like(expected[name]) if acc is None else acc
        assert torch.allclose(got, expected[name], rtol=1e-4, atol=1e-6), (name, (got - expected[name]).abs().max())
        moved += int(acc is not None)
    # Every op's weights come from exactly one path: their difference is that path's alone.
    ops = [(label, choice, m) for label, choice, m in engine.op_modules[0] if any(True for _ in m.parameters())]
    names = {id(p): n for n, p in model.named_parameters()}
    for label, choice, module in ops:
        owner = [i for i, arch in enumerate(paths) if arch[label] == choice]
        assert len(owner) == 1
        for p in module.parameters():
            others = [per_path[i][names[id(p)]] for i in range(len(paths)) if i != owner[0]]
            assert all(torch.count_nonzero(o) == 0 for o in others)
    assert moved > 0


def test_bn_statistics_follow_the_forwards_at_theta():
    """BN buffers end as FairNAS's would: one train-mode forward per path at theta, in path order."""
    run = _run("sumnas", **{"training.reptile_steps": 3})
    engine, model = run.module.engine, run.models[0]
    x, y = _batches(run, 1)[0][:2]
    chain = copy.deepcopy(model)
    engine.train_step((x, y), 0)
    chain.train()
    with torch.no_grad():
        for arch in engine.last_paths:
            arch_setter(chain)(arch)
            chain(x)
    for (name, b), c in zip(model.named_buffers(), chain.buffers()):
        assert torch.allclose(b.float(), c.float(), rtol=1e-5, atol=1e-6), name


# ---------------------------------------------------------------------------------------------- options and state
def test_default_inner_lr_scales_with_four_over_k():
    assert default_inner_lr(4) == pytest.approx(0.05)
    assert default_inner_lr(2) == pytest.approx(0.1)
    assert default_inner_lr(1) == pytest.approx(0.2)
    assert ReptileStep(steps=2).inner_lr == pytest.approx(0.1)
    assert ReptileStep(steps=2, inner_lr=0.3).inner_lr == pytest.approx(0.3)


def test_presets_set_outer_hyperparameters_and_user_values_win():
    r = Recipe.from_dict({"strategy": "sumnas"})
    t = r.training
    assert (t.update_rule, t.path_sampler, t.lr, t.momentum, t.weight_decay, t.grad_clip, t.lr_schedule) == \
        ("reptile", "strict_fair", 1.0, 0.0, 4e-5, None, "cosine")
    assert (t.reptile_steps, t.inner_lr, t.inner_momentum, t.inner_state, t.inner_batches) == \
        (4, None, 0.9, "reset", "same")
    ms = Recipe.from_dict({"strategy": "sumnas_ms"}).training
    assert (ms.path_sampler, ms.optimizer_state, ms.momentum, ms.lr) == ("cluster_fair", "separated", 0.9, 0.1)
    assert Recipe.from_dict({"strategy": "sumnas", "training": {"lr": 0.3}}).training.lr == 0.3
    assert Recipe.from_dict({"strategy": "fairnas"}).training.lr == 0.05  # presets do not leak


@pytest.mark.parametrize("key,value,field", [
    ("training.reptile_steps", 0, "training.reptile_steps"),
    ("training.inner_lr", -0.1, "training.inner_lr"),
    ("training.inner_momentum", 1.0, "training.inner_momentum"),
    ("training.inner_state", "sticky", "training.inner_state"),
    ("training.inner_batches", "fresh", "training.inner_batches"),
    ("training.inner_grad_clip", 0, "training.inner_grad_clip"),
    ("training.task_batching", 0, "training.task_batching"),
])
def test_invalid_reptile_fields_are_one_line_config_errors(key, value, field):
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"strategy": "sumnas"}, {key: value})
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_split_needs_a_batch_of_at_least_k():
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict({"strategy": "sumnas", "data": {"batch_size": 3}},
                         {"training.inner_batches": "split", "training.reptile_steps": 4})
    assert info.value.field == "data.batch_size"


def test_persistent_inner_momentum_round_trips_through_state_dict():
    over = {"training.reptile_steps": 2, "training.inner_state": "persistent"}
    a, b = _run("sumnas", **over), _run("sumnas", **over)
    data = _batches(a, 4)
    for step in range(2):
        a.module.engine.train_step(data[step], step)
    state = a.module.engine.state_dict()
    assert state["update_rule"]["inner_state"], "persistent momentum is checkpointed"
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    b.models[0].load_state_dict(a.models[0].state_dict())
    b.module.engine.load_state_dict(torch.load(buf, weights_only=True))
    for step in range(2, 4):
        a.module.engine.train_step(data[step], step)
        b.module.engine.train_step(data[step], step)
    for pa, pb in zip(a.models[0].parameters(), b.models[0].parameters()):
        assert torch.equal(pa, pb)


def test_reset_mode_keeps_no_state_and_memory_is_two_parameter_copies():
    run = _run("sumnas", **{"training.reptile_steps": 2})
    run.module.engine.train_step(_batches(run, 1)[0], 0)
    rule = run.module.engine.update_rule
    assert rule.state_dict() == {"inner_state": []}
    extra = rule.extra_bytes()
    params = sum(p.numel() * p.element_size() for p in run.module.engine.params)
    assert extra["snapshot"] == extra["accumulator"] == params  # strict fairness touches every parameter
    # The reset-mode momentum lives only while one path adapts: one path's share of the weights.
    assert 0 < extra["inner_momentum"] < 0.6 * params


def test_task_batching_trains_every_op_once_per_round():
    run = _run("sumnas", **{"training.reptile_steps": 1, "training.task_batching": 3})
    engine = run.module.engine
    engine.train_step(_batches(run, 1)[0], 0)
    paths = engine.last_paths
    assert len(paths) == 15
    for label, choices in run.search_space.items():
        counts = {c: sum(p[label] == c for p in paths) for c in choices}
        assert set(counts.values()) == {3}, (label, counts)
    assert engine.state_dict()["path_sampler"]["rng"]  # delegated to the wrapped sampler


def test_nonfinite_inner_loss_skips_the_outer_step():
    run = _run("sumnas", **{"training.reptile_steps": 2, "training.inner_lr": 1e30,
                            "training.inner_grad_clip": None})
    engine = run.module.engine
    engine.skip_nonfinite = True
    before = [p.detach().clone() for p in engine.params]
    x, y = _batches(run, 1)[0][:2]
    loss = engine.train_step((x * 1e6, y), 0)
    assert not math.isfinite(float(loss))
    for p, old in zip(engine.params, before):
        assert torch.equal(p, old)
