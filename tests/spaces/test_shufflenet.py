"""Tests of the SPOS ShuffleNetV2 space: layout, equivalence with NNI's space, forward, arguments."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.spaces import check_supported, count_architectures, search_space_of, shufflenet
from nni_dynamic_supernet.spaces.shufflenet import CHOICES, TINY_KWARGS
from nni_dynamic_supernet.arch import random_arch

from nni.nas.hub.pytorch import ShuffleNetSpace  # imported after our package, which silences NNI's import warning


def test_default_is_the_spos_space_and_matches_nni():
    space = shufflenet()
    ss = search_space_of(space)
    assert list(ss) == [f'block_{i}' for i in range(20)]
    assert all(tuple(v) == CHOICES for v in ss.values())
    assert count_architectures(ss) == 4 ** 20
    check_supported(space)
    # Same network as NNI's ShuffleNetSpace (only labels/keys differ): every candidate block and the fixed
    # parts have identical parameter counts (compared per module, which avoids slow freezes).
    nni_space = ShuffleNetSpace()
    to_nni = {'choice_3': 'k3', 'choice_5': 'k5', 'choice_7': 'k7', 'choice_x': 'xcep'}

    def numel(module):
        return sum(p.numel() for p in module.parameters())

    for ours, theirs in zip(space.features, nni_space.features):
        assert {k: numel(ours[k]) for k in CHOICES} == {k: numel(theirs[to_nni[k]]) for k in CHOICES}
    assert numel(space) == numel(nni_space)


@pytest.mark.parametrize('in_channels,input_size', [(1, 8), (3, 16), (3, 32)])
def test_forward_random_frozen_arch(in_channels, input_size):
    space = shufflenet(**{**TINY_KWARGS, 'in_channels': in_channels, 'input_size': input_size, 'num_classes': 5})
    assert space.nds_input_shape == (in_channels, input_size, input_size)
    assert space.nds_space_name == 'shufflenet'
    rng = np.random.RandomState(input_size)
    for _ in range(2):
        model = space.freeze(random_arch(search_space_of(space), rng))
        out = model.eval()(torch.randn(2, in_channels, input_size, input_size))
        assert out.shape == (2, 5)


def test_configurable_depths_and_stem_stride():
    space = shufflenet(depths=(1, 1, 2), widths=(8, 16, 24), stem_channels=4, last_channels=16, stem_stride=1,
                       input_size=8)
    assert list(search_space_of(space)) == ['block_0', 'block_1', 'block_2', 'block_3']
    assert space.first_conv[0].stride == (1, 1)


@pytest.mark.parametrize('kwargs,field', [
    (dict(widths=(16, 31)), 'space.kwargs.widths'),        # odd width
    (dict(widths=(16, 16)), 'space.kwargs.widths'),        # not increasing
    (dict(depths=(2,)), 'space.kwargs.widths'),            # length mismatch
    (dict(depths=(2, 0)), 'space.kwargs.depths'),
    (dict(stem_stride=3), 'space.kwargs.stem_stride'),
    (dict(last_channels=0), 'space.kwargs.last_channels'),
])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ConfigError) as info:
        shufflenet(**{**TINY_KWARGS, **kwargs})
    assert info.value.field == field
