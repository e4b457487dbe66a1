"""Tests of space validation: search_space_of, count_architectures and check_supported's refusals."""
from __future__ import annotations

import nni
import pytest
from torch import nn

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.spaces import (check_supported, count_architectures, mobilenet, nas_bench_201,
                                         search_space_of, shufflenet)
from nni_dynamic_supernet.spaces.mobilenet import TINY_KWARGS as MB_TINY
from nni_dynamic_supernet.spaces.shufflenet import TINY_KWARGS as SH_TINY

from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableConv2d, Repeat


class _WithInputChoice(ModelSpace):
    def __init__(self):
        super().__init__()
        self.op = LayerChoice({'a': nn.Conv2d(3, 4, 1), 'b': nn.Conv2d(3, 4, 3, padding=1)}, label='op')
        self.other = nn.Conv2d(3, 4, 1)
        self.pick = InputChoice(2, 1, label='pick_input')

    def forward(self, x):
        return self.pick([self.op(x), self.other(x)])


class _WithValueChoiceConv(ModelSpace):
    def __init__(self):
        super().__init__()
        self.op = LayerChoice([nn.Identity(), nn.ReLU()], label='act')
        self.conv = MutableConv2d(3, nni.choice('conv_width', [4, 8]), 3)

    def forward(self, x):
        return self.conv(self.op(x))


class _WithRepeat(ModelSpace):
    def __init__(self):
        super().__init__()
        self.blocks = Repeat(lambda i: nn.Conv2d(3, 3, 1), (1, 3), label='depth')

    def forward(self, x):
        return self.blocks(x)


class _WithFixedRepeat(ModelSpace):
    def __init__(self):
        super().__init__()
        self.blocks = Repeat(lambda i: LayerChoice({'a': nn.Identity(), 'b': nn.ReLU()}, label=f'op{i}'), 2)

    def forward(self, x):
        return self.blocks(x)


def test_search_space_of_is_ordered_and_counts():
    ss = search_space_of(nas_bench_201(channels=4, cells_per_stage=1, input_size=8))
    assert list(ss) == ['cell/0_1', 'cell/0_2', 'cell/1_2', 'cell/0_3', 'cell/1_3', 'cell/2_3']
    assert count_architectures(ss) == 5 ** 6
    assert count_architectures({'a': [1, 2], 'b': ['x']}) == 2
    assert count_architectures({}) == 1


def test_int_keys_from_list_candidates():
    assert search_space_of(_WithValueChoiceConv()) == {'act': [0, 1], 'conv_width': [4, 8]}


@pytest.mark.parametrize('factory,kwargs', [(nas_bench_201, dict(channels=4, cells_per_stage=1, input_size=8)),
                                            (mobilenet, MB_TINY), (shufflenet, SH_TINY)])
def test_our_spaces_are_supported(factory, kwargs):
    check_supported(factory(**kwargs))


def test_fixed_depth_repeat_is_fine():
    check_supported(_WithFixedRepeat())


@pytest.mark.parametrize('space_cls,expected', [
    (_WithInputChoice, {'op': ['a', 'b'], 'pick_input': [(0,), (1,)]}),
    (_WithValueChoiceConv, {'act': [0, 1], 'conv_width': [4, 8]}),
    (_WithRepeat, {'depth': [1, 2, 3]}),
])
def test_every_categorical_mutable_is_a_label(space_cls, expected):
    space = space_cls()
    check_supported(space)
    assert search_space_of(space) == expected


def test_numerical_mutable_is_refused_by_label():
    class WithNumerical(ModelSpace):
        def __init__(self):
            super().__init__()
            self.op = LayerChoice({'a': nn.Identity(), 'b': nn.ReLU()}, label='op')
            self.add_mutable(nni.mutable.Numerical(0.0, 1.0, label='drop_rate'))

        def forward(self, x):
            return self.op(x)

    with pytest.raises(ConfigError, match="Numerical 'drop_rate'") as info:
        check_supported(WithNumerical())
    assert '\n' not in str(info.value)


def test_constraint_is_refused():
    class WithConstraint(ModelSpace):
        def __init__(self):
            super().__init__()
            self.op = LayerChoice({'a': nn.Identity(), 'b': nn.ReLU()}, label='op')
            # A constraint over a LayerChoice label: NNI would reject samples behind our sampler's back.
            self.add_mutable(nni.mutable.ExpressionConstraint(self.op.choice == 'a', label='only_a'))

        def forward(self, x):
            return self.op(x)

    with pytest.raises(ConfigError, match='ExpressionConstraint .only_a.'):
        check_supported(WithConstraint())


def test_not_a_space():
    with pytest.raises(ConfigError, match='ModelSpace'):
        check_supported(nn.Linear(2, 2))


def test_supernet_keeps_the_search_space():
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot
    space = nas_bench_201(channels=4, cells_per_stage=1, input_size=8)
    pristine = search_space_of(space)
    RandomOneShot().mutate_model(space)
    check_supported(space)
    assert search_space_of(space) == pristine
