"""Supernet gradient variance per epoch (PA&DA, Lu et al., CVPR 2023, Fig. 4 and Appendix A).

For every parameter element ``w``, over the ``S_w`` steps of one epoch that gave it a
gradient ``d_{w,s}``::

    sigma_w^2 = (1 / S_w) * sum_s (d_{w,s} - mu_w)^2,      GV = mean over w of sigma_w^2

Running sums of ``d`` and ``d^2`` (and a step count per parameter tensor, since a tensor is
either on the path or not) give it in one pass, at the cost of two ``foreach`` kernels per
step and two extra copies of the parameters. Elements trained fewer than twice in the
epoch are left out of the mean (a single sample has no spread and would pull GV towards 0).

The gradients read are those the optimizer used, i.e. after clipping: the monitor is a
step observer and runs after the update. With ``grad_clip`` active early in training this
is slightly lower than the paper's pre-clip figure; both methods are measured alike.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

__all__ = ["GradientVarianceMonitor"]


class GradientVarianceMonitor:
    """Accumulates gradient statistics step by step; :meth:`end_epoch` returns GV and resets.

    Parameters
    ----------
    params
        The parameters to watch (usually every supernet parameter).

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> monitor = GradientVarianceMonitor([w])
    >>> for g in ([1.0, 0.0], [3.0, 0.0]):
    ...     w.grad = torch.tensor(g); monitor.on_step(0, [])
    >>> monitor.end_epoch()
    0.5
    """

    def __init__(self, params: Sequence[torch.nn.Parameter]) -> None:
        self.params = list(params)
        self._sum: Optional[list[torch.Tensor]] = None
        self._sq: Optional[list[torch.Tensor]] = None
        self._count = [0] * len(self.params)
        self.history: list[float] = []

    def _allocate(self) -> None:
        self._sum = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]
        self._sq = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]

    def on_step(self, step: int, paths: Sequence[dict]) -> None:
        """Add the current gradients (a step observer: ``fn(step, paths)``)."""
        if self._sum is None:
            self._allocate()
        assert self._sum is not None and self._sq is not None
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        grads = [self.params[i].grad.detach().float() for i in live]  # type: ignore[union-attr]
        with torch.no_grad():
            torch._foreach_add_([self._sum[i] for i in live], grads)
            torch._foreach_addcmul_([self._sq[i] for i in live], grads, grads)
        for i in live:
            self._count[i] += 1

    def end_epoch(self) -> float:
        """The epoch's supernet gradient variance (NaN if no element was trained twice); resets the sums."""
        total, elements = 0.0, 0
        if self._sum is not None and self._sq is not None:
            with torch.no_grad():
                for s, sq, count in zip(self._sum, self._sq, self._count):
                    if count >= 2:
                        mean = s / count
                        total += float((sq / count - mean * mean).clamp_min(0).sum())
                        elements += s.numel()
                    if count:
                        s.zero_()
                        sq.zero_()
        self._count = [0] * len(self.params)
        value = total / elements if elements else math.nan
        self.history.append(value)
        return value
