"""Tests of the ProxylessNAS/MobileNet chain space: layout, skip placement, forward, arguments."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.spaces import check_supported, count_architectures, mobilenet, search_space_of
from nni_dynamic_supernet.spaces.mobilenet import SKIP, TINY_KWARGS
from nni_dynamic_supernet.arch import random_arch

MBCONV = ['k3_e3', 'k3_e6', 'k5_e3', 'k5_e6', 'k7_e3', 'k7_e6']


def test_default_is_the_proxylessnas_mobile_space():
    space = mobilenet()
    ss = search_space_of(space)
    assert list(ss) == [f'layer_{i}' for i in range(21)]
    first_of_stage = {0, 4, 8, 12, 16, 20}   # downsampling or width-changing layers: no skip
    for i, values in enumerate(ss.values()):
        assert values == (MBCONV if i in first_of_stage else MBCONV + [SKIP])
    assert count_architectures(ss) == 6 ** 6 * 7 ** 15
    assert space.nds_input_shape == (3, 224, 224)
    check_supported(space)


def test_tiny_preset_skip_only_where_shape_is_kept():
    space = mobilenet(**TINY_KWARGS)
    ss = search_space_of(space)
    assert [SKIP in v for v in ss.values()] == [False, True, True, False]
    frozen = space.freeze({**{k: v[0] for k, v in ss.items()}, 'layer_1': SKIP})
    assert isinstance(frozen.layers[1], nn.Identity)


@pytest.mark.parametrize('in_channels,input_size', [(1, 8), (3, 16), (3, 32)])
def test_forward_random_frozen_arch(in_channels, input_size):
    space = mobilenet(**{**TINY_KWARGS, 'in_channels': in_channels, 'input_size': input_size, 'num_classes': 5})
    assert space.nds_input_shape == (in_channels, input_size, input_size)
    assert space.nds_space_name == 'mobilenet'
    rng = np.random.RandomState(input_size)
    for _ in range(2):
        model = space.freeze(random_arch(search_space_of(space), rng))
        out = model.eval()(torch.randn(2, in_channels, input_size, input_size))
        assert out.shape == (2, 5)


def test_width_mult_rounds_to_multiples_of_8():
    space = mobilenet(**{**TINY_KWARGS, 'width_mult': 1.5})
    assert space.stem[0].out_channels == 16          # 8 * 1.5 = 12 -> 16
    assert space.classifier.in_features == 24        # last channels scaled only when width_mult > 1
    assert space.nds_space_kwargs['width_mult'] == 1.5


@pytest.mark.parametrize('kwargs,field', [
    (dict(depths=(1, 2)), 'space.kwargs.depths'),
    (dict(strides=(2, 3, 2)), 'space.kwargs.strides'),
    (dict(widths=[8, 0, 16]), 'space.kwargs.widths'),
    (dict(kernel_sizes=(3, 4)), 'space.kwargs.kernel_sizes'),
    (dict(width_mult=0), 'space.kwargs.width_mult'),
    (dict(dropout=1.0), 'space.kwargs.dropout'),
    (dict(stem_channels='8'), 'space.kwargs.stem_channels'),
])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ConfigError) as info:
        mobilenet(**{**TINY_KWARGS, **kwargs})
    assert info.value.field == field
