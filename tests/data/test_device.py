"""``data.on_device``: the training split kept whole on the device yields the host loader's batches, in order."""
from __future__ import annotations

import pytest
import torch

from nni_dynamic_supernet.data import IndexedDataset, make_loader
from nni_dynamic_supernet.data.device import DeviceLoader
from nni_dynamic_supernet.data.samplers import ImportanceDataSampler
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import Recipe
from tests.tiny_recipe import tiny_recipe


def _dataset(n: int = 50) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


@pytest.mark.parametrize("shuffle", [True, False])
def test_same_batches_as_the_host_loader_epoch_after_epoch(shuffle: bool) -> None:
    host = make_loader(_dataset(), 8, shuffle=shuffle, seed=3, drop_last=True)
    device = DeviceLoader(make_loader(_dataset(), 8, shuffle=shuffle, seed=3, drop_last=True), "cpu")
    assert len(device) == len(host) == 6
    for _ in range(3):  # the generator advances identically every epoch
        for (hx, hy), (dx, dy) in zip(host, device, strict=True):
            assert torch.equal(hx, dx) and torch.equal(hy, dy)


def test_importance_sampler_order_and_indices() -> None:
    data = IndexedDataset(_dataset())
    host = make_loader(data, 8, shuffle=True, seed=0, drop_last=True, sampler=ImportanceDataSampler(len(data), seed=1))
    device = DeviceLoader(make_loader(data, 8, shuffle=True, seed=0, drop_last=True,
                                      sampler=ImportanceDataSampler(len(data), seed=1)), "cpu")
    for (hx, hy, hi), (dx, dy, di) in zip(host, device, strict=True):
        assert torch.equal(hx, dx) and torch.equal(hy, dy) and torch.equal(hi, di)


def test_on_device_refuses_augmentation_and_ddp() -> None:
    with pytest.raises(ConfigError, match="data.on_device"):
        Recipe.from_dict(tiny_recipe(data={"on_device": True, "augment": True}))
    with pytest.raises(ConfigError, match="data.on_device"):
        Recipe.from_dict(tiny_recipe(data={"on_device": True}, training={"devices": 2}))


def test_training_on_device_gives_the_host_result() -> None:
    from nni_dynamic_supernet.pipeline import prepare, train
    runs = [prepare(Recipe.from_dict(tiny_recipe(data={"on_device": flag}, training={"max_steps_per_epoch": 3})))
            for flag in (False, True)]
    for run in runs:
        train(run, None)
    for a, b in zip(runs[0].module.parameters(), runs[1].module.parameters()):
        assert torch.equal(a, b)
