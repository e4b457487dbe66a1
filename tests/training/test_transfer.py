"""Tests of supernet transfer: a new head of the new size, the old features kept, optional freezing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.registry import create_space
from nni_dynamic_supernet.supernet import arch_setter, mutate_to_supernet
from nni_dynamic_supernet.training.transfer import find_classifier, freeze_features, replace_classifier

torch.set_num_threads(1)

TINY = dict(channels=2, cells_per_stage=1, num_classes=10, in_channels=1, input_size=8)


def _supernet():
    torch.manual_seed(0)
    return mutate_to_supernet(create_space("nas_bench_201", **TINY))


def test_new_head_has_new_size_and_features_are_kept():
    model = _supernet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = replace_classifier(model, 2, seed=1)
    assert find_classifier(model)[2] is head
    assert (head.out_features, head.in_features) == (2, before["classifier.weight"].shape[1])
    after = model.state_dict()
    assert after["classifier.weight"].shape == (2, before["classifier.weight"].shape[1])
    for k, v in before.items():
        if not k.startswith("classifier."):
            assert torch.equal(v, after[k]), k
    arch_setter(model)({label: "conv_3x3" for label in ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3",
                                                          "cell/2_3"]})
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 2)


def test_head_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(2)
    a, b = _supernet(), _supernet()
    torch.manual_seed(5)
    ha = replace_classifier(a, 3, seed=7)
    assert torch.equal(torch.rand(2), expected)
    hb = replace_classifier(b, 3, seed=7)
    assert torch.equal(ha.weight, hb.weight) and torch.equal(ha.bias, hb.bias)
    assert not torch.equal(ha.weight, replace_classifier(_supernet(), 3, seed=8).weight)


def test_freeze_features_trains_only_the_head():
    model = _supernet()
    replace_classifier(model, 2, seed=0)
    frozen = freeze_features(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert frozen > 0 and sorted(trainable) == ["classifier.bias", "classifier.weight"]


def test_model_without_linear_is_refused():
    with pytest.raises(ConfigError, match="transfer"):
        replace_classifier(nn.Sequential(nn.Conv2d(1, 2, 3)), 2, seed=0)
