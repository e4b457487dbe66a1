"""Tests of SubnetEvaluator: BN policy, determinism, and that evaluation never changes the supernet."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.search.evaluate import SubnetEvaluator, take_batches
from nni_dynamic_supernet.search.run import build_evaluator
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet
from nni_dynamic_supernet.spaces.introspection import search_space_of_model
from nni_dynamic_supernet.training.partition import OneShotPartition

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=3, in_channels=1, input_size=8)
ARCH_A = {"cell/0_1": "conv_3x3", "cell/0_2": "conv_1x1", "cell/1_2": "skip_connect", "cell/0_3": "conv_3x3",
          "cell/1_3": "avg_pool_3x3", "cell/2_3": "conv_1x1"}
ARCH_B = {"cell/0_1": "conv_1x1", "cell/0_2": "skip_connect", "cell/1_2": "conv_3x3", "cell/0_3": "none",
          "cell/1_3": "conv_3x3", "cell/2_3": "avg_pool_3x3"}


def _batches(n, seed, shift=0.0, scale=1.0, size=16):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 8, 8, generator=g) * scale + shift, torch.randint(0, 3, (size,), generator=g))
            for _ in range(n)]


def _supernet(seed=0, stats_shift=3.0):
    """A tiny supernet whose BN running statistics are far from those of the evaluation data."""
    torch.manual_seed(seed)
    supernet = mutate_to_supernet(create_space("nas_bench_201", **TINY))
    set_arch = arch_setter(supernet)
    supernet.train()
    with torch.no_grad():
        for arch, (x, _) in zip([ARCH_A, ARCH_B, ARCH_A], _batches(3, seed=99, shift=stats_shift, scale=4.0)):
            set_arch(arch)
            supernet(x)
    return supernet


def _evaluator(supernet, bn_mode="recalibrate"):
    val = _batches(2, seed=1)
    calib = _batches(3, seed=2) if bn_mode == "recalibrate" else []
    return SubnetEvaluator([supernet], [arch_setter(supernet)], lambda arch: 0, val, calib, bn_mode)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("bn_mode", ["recalibrate", "inherit"])
def test_evaluation_leaves_supernet_untouched(bn_mode):
    supernet = _supernet()
    supernet.train()
    before = _state(supernet)
    assert any("running_mean" in k for k in before) and any("num_batches_tracked" in k for k in before)
    momenta = [m.momentum for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    evaluator = _evaluator(supernet, bn_mode)
    for arch in (ARCH_A, ARCH_B, ARCH_A):
        evaluator.evaluate(arch)
    _assert_state_equal(before, _state(supernet))
    assert [m.momentum for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)] == momenta
    assert supernet.training  # mode restored
    assert all(p.grad is None for p in supernet.parameters())
    assert evaluator.evaluations == 3
    supernet.eval()
    evaluator.evaluate(ARCH_B)
    assert not supernet.training


def test_recalibration_really_changes_bn_statistics_during_evaluation():
    """Guard for the test above: the snapshot/restore must have something to restore."""
    supernet = _supernet()
    evaluator = _evaluator(supernet)
    seen = []
    bn = next(m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d))
    handle = supernet.classifier.register_forward_hook(lambda *args: seen.append(bn.running_mean.clone()))
    before = bn.running_mean.clone()
    try:
        evaluator.evaluate(ARCH_A)
    finally:
        handle.remove()
    assert seen and not torch.equal(seen[-1], before)
    assert torch.equal(bn.running_mean, before)


@pytest.mark.parametrize("bn_mode", ["recalibrate", "inherit"])
def test_evaluation_is_deterministic(bn_mode):
    supernet = _supernet()
    evaluator = _evaluator(supernet, bn_mode)
    first = evaluator.evaluate(ARCH_A)
    evaluator.evaluate(ARCH_B)
    again = evaluator.evaluate(ARCH_A)
    assert first == again
    assert 0.0 <= first["accuracy"] <= 100.0 and first["loss"] > 0
    other = _evaluator(copy.deepcopy(supernet), bn_mode).evaluate(ARCH_A)
    assert other == first


def test_inherit_differs_from_recalibrate():
    supernet = _supernet()
    recal = _evaluator(supernet, "recalibrate").evaluate(ARCH_A)
    inherit = _evaluator(supernet, "inherit").evaluate(ARCH_A)
    assert recal["loss"] != pytest.approx(inherit["loss"], rel=1e-6)


def test_recalibration_ignores_the_inherited_statistics():
    # Same weights, different running statistics: recalibrate agrees, inherit does not.
    a = _supernet(seed=0, stats_shift=3.0)
    b = copy.deepcopy(a)
    set_b = arch_setter(b)
    b.train()
    with torch.no_grad():
        set_b(ARCH_B)
        for x, _ in _batches(4, seed=7, shift=-5.0, scale=0.2):
            b(x)
    assert any(not torch.equal(sa, sb) for (ka, sa), (kb, sb) in zip(a.state_dict().items(), b.state_dict().items())
               if "running" in ka)
    assert _evaluator(a, "recalibrate").evaluate(ARCH_A) == _evaluator(b, "recalibrate").evaluate(ARCH_A)
    assert _evaluator(a, "inherit").evaluate(ARCH_A) != _evaluator(b, "inherit").evaluate(ARCH_A)


def test_architectures_are_distinguished():
    supernet = _supernet()
    evaluator = _evaluator(supernet)
    assert evaluator.evaluate(ARCH_A)["loss"] != evaluator.evaluate(ARCH_B)["loss"]


def test_routes_to_the_owning_leaf():
    a, b = _supernet(seed=0), _supernet(seed=1)
    val, calib = _batches(2, seed=1), _batches(2, seed=2)
    routed = SubnetEvaluator([a, b], [arch_setter(a), arch_setter(b)],
                             lambda arch: 1 if arch["cell/0_1"] == "conv_1x1" else 0, val, calib)
    only_b = SubnetEvaluator([b], [arch_setter(b)], lambda arch: 0, val, calib)
    only_a = SubnetEvaluator([a], [arch_setter(a)], lambda arch: 0, val, calib)
    assert routed.evaluate(ARCH_B) == only_b.evaluate(ARCH_B)
    assert routed.evaluate(ARCH_A) == only_a.evaluate(ARCH_A)
    assert only_a.evaluate(ARCH_B) != only_b.evaluate(ARCH_B)


def test_policy_record():
    supernet = _supernet()
    assert _evaluator(supernet).policy == {"bn_mode": "recalibrate", "bn_batches": 3, "val_examples": 32}
    assert _evaluator(supernet, "inherit").policy == {"bn_mode": "inherit", "bn_batches": 0, "val_examples": 32}


def test_bad_arguments():
    supernet = _supernet()
    setter = [arch_setter(supernet)]
    with pytest.raises(ConfigError) as info:
        SubnetEvaluator([supernet], setter, lambda a: 0, _batches(1, 1), _batches(1, 2), bn_mode="reset")
    assert info.value.field == "search.bn_mode"
    with pytest.raises(ConfigError) as info:
        SubnetEvaluator([supernet], setter, lambda a: 0, _batches(1, 1), [], bn_mode="recalibrate")
    assert info.value.field == "search.bn_batches"
    with pytest.raises(ConfigError):
        SubnetEvaluator([supernet], setter, lambda a: 0, [], _batches(1, 2))


def test_take_batches():
    loader = _batches(5, seed=3)
    taken = take_batches(loader, 3)
    assert len(taken) == 3
    assert torch.equal(taken[2][0], loader[2][0])
    assert len(take_batches(loader, 100)) == 5
    with_index = [(x, y, torch.arange(len(y))) for x, y in loader]
    assert all(len(b) == 2 for b in take_batches(with_index, 2))


def test_build_evaluator_from_recipe():
    supernet = _supernet()
    partition = OneShotPartition(search_space_of_model(supernet))
    recipe = Recipe.from_dict({}, {"search.bn_batches": 2})
    evaluator = build_evaluator(recipe.search, [supernet], partition, _batches(5, seed=2), _batches(3, seed=1))
    assert evaluator.policy == {"bn_mode": "recalibrate", "bn_batches": 2, "val_examples": 48}
    inherit = build_evaluator(recipe.replace(**{"search.bn_mode": "inherit"}).search, [supernet], partition,
                              _batches(5, seed=2), _batches(3, seed=1))
    assert inherit.policy["bn_batches"] == 0
    assert evaluator.evaluate(ARCH_A) != inherit.evaluate(ARCH_A)


def test_active_bn_layers_are_exactly_those_that_run():
    """The BN set the evaluator recalibrates is the set a forward of the arch actually calls."""
    supernet = _supernet()
    evaluator = _evaluator(supernet)
    all_bns = [m for m in supernet.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    ran: set = set()
    hooks = [bn.register_forward_hook(lambda m, i, o: ran.add(id(m))) for bn in all_bns]
    try:
        for arch in (ARCH_A, ARCH_B):
            ran.clear()
            arch_setter(supernet)(arch)
            with torch.no_grad():
                supernet(_batches(1, seed=5)[0][0])
            active = evaluator.active_bn_layers(0, arch)
            assert {id(bn) for bn in active} == ran
            assert len(active) < len(all_bns)
    finally:
        for hook in hooks:
            hook.remove()


def test_active_path_recalibration_scores_equal_full_recalibration(monkeypatch):
    """Recalibrating only the path's BN layers gives bit-identical scores and leaves the same supernet state."""
    fast_net, full_net = _supernet(), _supernet()
    fast, full = _evaluator(fast_net), _evaluator(full_net)
    every = [[bn for bn, _ in layers] for layers in full._bns]
    monkeypatch.setattr(full, "active_bn_layers", lambda leaf, arch: every[leaf])
    for arch in (ARCH_A, ARCH_B, ARCH_A):
        assert fast.evaluate(arch) == full.evaluate(arch)
    _assert_state_equal(_state(fast_net), _state(full_net))
