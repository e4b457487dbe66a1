"""``freeze_subnet``: the subnet of one architecture with the supernet's own weights."""
from __future__ import annotations

import copy

import nni
import torch
import torch.nn as nn
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, Repeat
from nni.nas.nn.pytorch.base import recursive_freeze

from nni_dynamic_supernet.supernet.modules import arch_setter, mutate_to_supernet, supernet_modules
from nni_dynamic_supernet.supernet.subnet import freeze_subnet


class _Space(ModelSpace):
    """A plain ``MutableConv2d`` stem, a layer choice, and a depth choice: what NNI's freeze re-creates or keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = MutableConv2d(3, 4, 3, padding=1)  # no mutable argument: the supernet keeps it plain
        self.block = LayerChoice({"conv3": MutableConv2d(4, 4, 3, padding=1), "conv1": MutableConv2d(4, 4, 1)},
                                 label="block")
        self.tail = Repeat(lambda i: nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()), nni.choice("depth", [1, 2]))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(self.block(self.stem(x))))


def test_the_subnet_runs_the_supernets_weights_where_nnis_freeze_draws_new_ones() -> None:
    torch.manual_seed(0)
    supernet = mutate_to_supernet(_Space())
    before = copy.deepcopy(supernet.state_dict())
    x = torch.randn(2, 3, 8, 8)
    owned = {id(p) for p in supernet.parameters()}
    for arch in ({"block": "conv3", "depth": 2}, {"block": "conv1", "depth": 1}):
        arch_setter(supernet)(arch)
        subnet = freeze_subnet(supernet, arch)
        assert not supernet_modules(subnet)
        assert all(id(p) in owned for p in subnet.parameters())
        with torch.no_grad():
            assert torch.equal(subnet(x), supernet(x))
        assert len(subnet.tail) == arch["depth"]
    # NNI's own recursive freeze re-creates the plain MutableConv2d stem with new random weights.
    nni_frozen = recursive_freeze(supernet, {"block": "conv3", "depth": 2}, include_root=False)[0]
    assert not torch.equal(nni_frozen.stem.weight, supernet.stem.weight)
    # The supernet itself is untouched.
    assert all(torch.equal(v, before[k]) for k, v in supernet.state_dict().items())
