"""Zero-cost proxies by NASLib's definitions: SynFlow, Jacobian covariance, NASWOT."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nni_dynamic_supernet.ranking.zero_cost import PROXIES, jacov, nwot, synflow


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))


def test_synflow_is_the_sum_of_abs_weight_times_gradient_of_the_linearised_net() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 1, bias=False))
    w1, w2 = net[0].weight.detach().abs().double(), net[1].weight.detach().abs().double()
    # Output of an all-ones input: w2 @ w1 @ 1. d/dw1[i, j] = w2[0, i]; d/dw2[0, i] = (w1 @ 1)[i].
    expected = float((w1 * w2.t().expand_as(w1)).sum() + (w2 * (w1 @ torch.ones(3, 1, dtype=torch.float64)).t()).sum())
    assert synflow(net, torch.randn(4, 3), torch.zeros(4)) == pytest.approx(expected)


def test_proxies_leave_the_model_unchanged_and_ignore_its_mode() -> None:
    net = _net().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 3, 4, 4), torch.randint(0, 5, (8,))
    for fn in PROXIES.values():
        assert math.isfinite(fn(net, x, y))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not net.training


def test_synflow_bypasses_batchnorm() -> None:
    net = _net()
    scaled = _net()
    with torch.no_grad():
        scaled[1].running_var.mul_(100.0)  # BN statistics must not matter with BN bypassed
    x = torch.randn(8, 3, 4, 4)
    assert synflow(net, x, x) == pytest.approx(synflow(scaled, x, x))


def test_jacov_is_undefined_when_the_output_ignores_the_input() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 5) + 0.0 * x.reshape(x.shape[0], -1)[:, :5]

    assert math.isnan(jacov(Constant(), torch.randn(6, 3, 4, 4), torch.zeros(6)))


def test_nwot_is_the_logdet_of_the_relu_code_kernel() -> None:
    net = nn.Sequential(nn.Flatten(), nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 2.0], [-1.0, 1.0, 3.0], [2.0, 2.0, -1.0]])
    codes = (x > 0).double().numpy()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert nwot(net, x, torch.zeros(3)) == pytest.approx(np.linalg.slogdet(kernel)[1])
