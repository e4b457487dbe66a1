"""Tests of the supernet gradient-variance monitor (PA&DA Appendix A)."""
from __future__ import annotations

import math

import torch

from nni_dynamic_supernet.training.gradient_variance import GradientVarianceMonitor

torch.set_num_threads(1)


def test_matches_brute_force_per_parameter_variance():
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(5))]
    monitor = GradientVarianceMonitor(params)
    recorded: list[list[torch.Tensor]] = [[] for _ in params]
    for step in range(7):
        for i, p in enumerate(params):
            # param 1 is on the path every other step; param 2 only once (left out of the mean).
            on_path = i == 0 or (i == 1 and step % 2 == 0) or (i == 2 and step == 3)
            p.grad = torch.randn(p.shape, generator=g) if on_path else None
            if on_path:
                recorded[i].append(p.grad.clone())
        monitor.on_step(step, [])
    expected_sum, elements = 0.0, 0
    for grads in recorded:
        if len(grads) < 2:
            continue
        stacked = torch.stack(grads)
        expected_sum += float(stacked.var(dim=0, unbiased=False).sum())  # 1/S, as in Eq. 14
        elements += stacked[0].numel()
    assert math.isclose(monitor.end_epoch(), expected_sum / elements, rel_tol=1e-5)
    # The sums restart every epoch.
    for p in params:
        p.grad = torch.ones_like(p)
    monitor.on_step(0, [])
    monitor.on_step(1, [])
    assert monitor.end_epoch() == 0.0
    assert math.isnan(monitor.end_epoch())  # nothing trained
    assert len(monitor.history) == 3
