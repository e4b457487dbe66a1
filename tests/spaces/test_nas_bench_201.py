"""Tests of the NAS-Bench-201 space factory: NNI labels/op names, in_channels, forward, arguments."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.spaces import check_supported, count_architectures, nas_bench_201, search_space_of
from nni_dynamic_supernet.spaces.nas_bench_201 import NB201_LABELS, NB201_OPS, TINY_KWARGS, NasBench201Space
from nni_dynamic_supernet.arch import random_arch

from nni.nas.hub.pytorch import NasBench201  # imported after our package, which silences NNI's import warning


def test_labels_and_ops_match_nni():
    ours = search_space_of(nas_bench_201(channels=4, cells_per_stage=1, input_size=8))
    theirs = search_space_of(NasBench201(stem_out_channels=4, num_modules_per_stack=1))
    assert ours == theirs
    assert tuple(ours) == NB201_LABELS
    assert all(tuple(v) == NB201_OPS for v in ours.values())
    assert count_architectures(ours) == 15_625


def test_module_names_match_nni_with_rgb_input():
    # Same state-dict keys and shapes as NNI's space: weights and checkpoints are interchangeable.
    ours = nas_bench_201(channels=4, cells_per_stage=1, input_size=8).state_dict()
    theirs = NasBench201(stem_out_channels=4, num_modules_per_stack=1).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize('in_channels,input_size', [(1, 8), (3, 16), (1, 32)])
def test_forward_random_frozen_arch(in_channels, input_size):
    space = nas_bench_201(channels=4, cells_per_stage=1, num_classes=5, in_channels=in_channels,
                          input_size=input_size)
    check_supported(space)
    assert space.nds_input_shape == (in_channels, input_size, input_size)
    assert space.nds_space_name == 'nas_bench_201'
    assert space.nds_space_kwargs['in_channels'] == in_channels
    arch = random_arch(search_space_of(space), np.random.RandomState(in_channels + input_size))
    model = space.freeze(arch)
    assert isinstance(model, NasBench201Space)
    out = model(torch.randn(2, in_channels, input_size, input_size))
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()


def test_tiny_preset_builds():
    space = nas_bench_201(**TINY_KWARGS)
    assert space.nds_input_shape == (3, 8, 8)
    assert len(space.cells) == 3 * 3 + 2


@pytest.mark.parametrize('kwargs,field', [
    (dict(channels=0), 'space.kwargs.channels'),
    (dict(cells_per_stage=-1), 'space.kwargs.cells_per_stage'),
    (dict(num_classes=2.5), 'space.kwargs.num_classes'),
    (dict(in_channels=True), 'space.kwargs.in_channels'),
    (dict(input_size=10), 'space.kwargs.input_size'),
])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ConfigError) as info:
        nas_bench_201(**kwargs)
    assert info.value.field == field
    assert '\n' not in str(info.value)
