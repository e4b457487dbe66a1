"""LR policies: what learning rate a subnet gets at step ``t``.

A policy splits the LR into two factors:

* ``schedule(t)``: a global multiplier of the base LR (cosine, poly, constant);
* ``path_factor(t, arch)``: a per-subnet multiplier (1 for static policies; the CaLR
  decay ``(1 - t/T)^gamma(arch)`` for complexity-aware LR).

The update rule applies the per-path factor as the LR when a step trains one path, and
as a loss weight when a step accumulates several paths (the CaLR paper's FairNAS code).
"""
from __future__ import annotations

from ...errors import ConfigError

__all__ = ["LRPolicy"]


class LRPolicy:
    """Base LR policy; see the module docstring for the two factors."""

    def __init__(self, base_lr: float, total_steps: int) -> None:
        if total_steps <= 0:
            raise ConfigError("training.epochs", total_steps, "the run must have at least one optimizer step")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)

    def progress(self, step: int) -> float:
        """``t/T`` with ``t`` clamped to ``T - 1``: ``1 - t/T`` must stay positive (a negative base gives NaN)."""
        return min(max(step, 0), self.total_steps - 1) / self.total_steps

    def schedule(self, step: int) -> float:
        """Global multiplier of the base LR at ``step``."""
        return 1.0

    def path_factor(self, step: int, arch: dict) -> float:
        """Per-subnet multiplier at ``step``."""
        return 1.0

    def lr(self, step: int, arch: dict) -> float:
        """The LR of a single-path step: ``base_lr * schedule * path_factor``."""
        return self.base_lr * self.schedule(step) * self.path_factor(step, arch)

    def state_dict(self) -> dict:
        """Policies are stateless functions of the step; nothing to save."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore; kept for a uniform component interface."""
