"""Tests of ComplexityModel: exact params vs freeze+count, bounds, FLOPs, fallbacks, guards."""
from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.spaces import mobilenet, nas_bench_201, shufflenet
from nni_dynamic_supernet.spaces.mobilenet import TINY_KWARGS as MB_TINY
from nni_dynamic_supernet.spaces.shufflenet import TINY_KWARGS as SH_TINY
from nni_dynamic_supernet.arch import random_arch as architecture_rng_sample
from nni_dynamic_supernet.spaces.complexity import ComplexityModel

from nni.nas.nn.pytorch import LayerChoice, ModelSpace

NB_TINY = dict(channels=4, cells_per_stage=1, num_classes=5, in_channels=1, input_size=8)
SPACES = {
    'nas_bench_201': lambda: nas_bench_201(**NB_TINY),
    'mobilenet': lambda: mobilenet(**{**MB_TINY, 'num_classes': 5, 'in_channels': 1, 'input_size': 8}),
    'shufflenet': lambda: shufflenet(**{**SH_TINY, 'num_classes': 5, 'input_size': 16}),
}


def _freeze_count(space, arch) -> int:
    model = copy.deepcopy(space.freeze(arch))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_BUILT: dict = {}


def _built(name: str):
    """(space, ComplexityModel) per space, built once per test session: each build costs a few seconds."""
    if name not in _BUILT:
        space = SPACES[name]()
        before = {k: v.clone() for k, v in space.state_dict().items()}
        _BUILT[name] = (space, ComplexityModel(space), before)
    return _BUILT[name]


@pytest.fixture(params=list(SPACES))
def space_and_model(request):
    space, cm, _ = _built(request.param)
    return request.param, space, cm


def test_params_equal_freeze_count(space_and_model):
    name, space, cm = space_and_model
    assert cm.method == 'profiler' and cm.flops_method == 'profiler', cm.fallback_reason
    rng = np.random.RandomState(123)
    for _ in range(2):
        arch = architecture_rng_sample(cm.search_space, rng)
        assert cm.params(arch) == _freeze_count(space, arch)
        assert cm.flops(arch) > 0


def test_additive_bounds_are_attained(space_and_model):
    _, space, cm = space_and_model
    lo, hi = cm.bounds('params')
    assert cm.bounds_method == 'additive'
    arch_lo, arch_hi = cm.extreme_archs('params')
    assert _freeze_count(space, arch_lo) == lo and _freeze_count(space, arch_hi) == hi
    f_lo, f_hi = cm.bounds('flops')
    assert cm.bounds_methods['flops'] == 'additive'
    assert 0 < f_lo < f_hi


def test_callers_space_is_left_alone(space_and_model):
    name, space, cm = space_and_model
    cm.bounds()
    _, _, before = _built(name)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in space.modules())
    assert all(torch.equal(before[k], v) for k, v in space.state_dict().items())


def test_nb201_bounds_equal_brute_force_and_min_is_param_free():
    _, cm, _ = _built('nas_bench_201')
    ss = cm.search_space
    values = [cm.params(dict(zip(ss, combo))) for combo in itertools.product(*ss.values())]
    assert len(values) == 15_625
    assert cm.bounds('params') == (min(values), max(values))
    arch_min, arch_max = cm.extreme_archs('params')
    assert set(arch_min.values()) == {'none'} and set(arch_max.values()) == {'conv_3x3'}
    # C_min is the parameter count of the cell-free skeleton: every all-parameter-free genotype gets it.
    for op in ('none', 'skip_connect', 'avg_pool_3x3'):
        assert cm.params({label: op for label in ss}) == min(values)


def test_nb201_flops_larger_for_conv3x3_than_none():
    _, cm, _ = _built('nas_bench_201')
    labels = list(cm.search_space)
    none = {label: 'none' for label in labels}
    conv = {label: 'conv_3x3' for label in labels}
    assert 0 < cm.flops(none) < cm.flops({**none, 'cell/0_1': 'conv_3x3'}) < cm.flops(conv)
    assert cm.bounds('flops') == (cm.flops(none), cm.flops(conv))


def test_fallback_without_profiler_is_exact():
    space, fast, _ = _built('mobilenet')
    slow = ComplexityModel(space, use_profiler=False, self_check_samples=1)
    assert slow.method == 'additive' and slow.flops_method == 'freeze'
    rng = np.random.RandomState(5)
    for _ in range(2):
        arch = architecture_rng_sample(slow.search_space, rng)
        assert slow.params(arch) == fast.params(arch) == _freeze_count(space, arch)
        # The reference FLOPs (real-shape forward with NNI's formulas) equal the profiler's symbolic ones.
        assert slow.flops(arch) == fast.flops(arch)
    assert slow.bounds('params') == fast.bounds('params')


class _Untraceable(nn.Module):
    """An op NNI's profiler has no shape formula for (a leaf using an unregistered aten op)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c, 1, 1))

    def forward(self, x):
        return torch.flip(x, dims=[-1]) * self.weight


class _StrideSpace(ModelSpace):
    """Two decisions whose FLOPs interact (the stride chosen first changes the cost of the second)."""

    def __init__(self, untraceable: bool = False):
        super().__init__()
        self.first = LayerChoice({'s1': nn.Conv2d(2, 4, 3, padding=1), 's2': nn.Conv2d(2, 4, 3, 2, padding=1)},
                                 label='first')
        self.second = LayerChoice({'k1': nn.Conv2d(4, 4, 1), 'k3': nn.Conv2d(4, 4, 3, padding=1),
                                   'odd': _Untraceable(4) if untraceable else nn.Identity()}, label='second')
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.second(self.first(x))).flatten(1))


def test_failed_profiler_build_falls_back_and_leaves_no_hooks():
    space = _StrideSpace(untraceable=True)
    cm = ComplexityModel(space, input_shape=(2, 8, 8))
    assert cm.method == 'additive' and cm.flops_method == 'freeze'
    assert cm.fallback_reason.startswith('profiler build failed')
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in space.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in cm._space.modules())
    for combo in itertools.product(*cm.search_space.values()):
        arch = dict(zip(cm.search_space, combo))
        assert cm.params(arch) == _freeze_count(space, arch)
    # first conv (2*4*9 + 4) + cheapest second op ('odd': 4) + fc (4*3 + 3); max takes 'k3' (4*4*9 + 4).
    assert cm.bounds('params') == (76 + 4 + 15, 76 + 148 + 15)


def test_non_additive_flops_use_enumeration_or_estimate():
    space = _StrideSpace()
    cm = ComplexityModel(space, input_shape=(2, 8, 8))
    assert cm.flops({'first': 's1', 'second': 'k3'}) > cm.flops({'first': 's2', 'second': 'k3'})
    cm.bounds('flops')
    assert cm.bounds_methods['flops'] == 'enumeration'
    all_flops = [cm.flops(dict(zip(cm.search_space, c))) for c in itertools.product(*cm.search_space.values())]
    assert cm.bounds('flops') == (min(all_flops), max(all_flops))
    small = ComplexityModel(space, input_shape=(2, 8, 8), enumeration_limit=2, estimate_samples=50)
    with pytest.warns(RuntimeWarning, match='estimated'):
        lo, hi = small.bounds('flops')
    assert small.bounds_methods['flops'] == 'estimated'
    assert min(all_flops) <= lo <= hi <= max(all_flops)


def test_bad_queries_are_config_errors():
    cm = ComplexityModel(_StrideSpace(), input_shape=(2, 8, 8), self_check_samples=1)
    with pytest.raises(ConfigError, match='missing label'):
        cm.params({'first': 's1'})
    with pytest.raises(ConfigError, match="arch\\['second'\\]"):
        cm.params({'first': 's1', 'second': 'k5'})
    with pytest.raises(ConfigError, match='metric'):
        cm.bounds('latency')
    with pytest.raises(ConfigError, match='input_shape'):
        ComplexityModel(_StrideSpace())


def test_refuses_a_supernet():
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot
    space = _StrideSpace()
    RandomOneShot().mutate_model(space)
    with pytest.raises(ConfigError, match='pristine'):
        ComplexityModel(space, input_shape=(2, 8, 8))


def test_architecture_rng_sample_is_uniform_and_reproducible():
    ss = {'a': ['x', 'y'], 'b': [0, 1, 2]}
    draws = [architecture_rng_sample(ss, np.random.RandomState(0)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.RandomState(1)
    counts = {v: 0 for v in ss['b']}
    for _ in range(3000):
        arch = architecture_rng_sample(ss, rng)
        assert arch['a'] in ss['a'] and type(arch['b']) is int
        counts[arch['b']] += 1
    assert all(900 < c < 1100 for c in counts.values())
    assert set(architecture_rng_sample(ss, np.random.default_rng(0))) == {'a', 'b'}
