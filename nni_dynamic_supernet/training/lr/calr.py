"""LR policies: what learning rate a subnet gets at step ``t``.

A policy splits the LR into two factors:

* ``schedule(t)``: a global multiplier of the base LR (cosine, poly, constant);
* ``path_factor(t, arch)``: a per-subnet multiplier (1 for static policies; the CaLR
  decay ``(1 - t/T)^gamma(arch)`` for complexity-aware LR).

The update rule applies the per-path factor as the LR when a step trains one path, and
as a loss weight when a step accumulates several paths (the CaLR paper's FairNAS code).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional

from ...errors import ConfigError

__all__ = ["LRPolicy", "StaticLR", "ComplexityAwareLR"]


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


class StaticLR(LRPolicy):
    """The same schedule for every subnet: ``cosine``, ``poly`` (power ``p``) or ``constant``.

    ``lr_min`` is the final LR as a fraction of the base LR (cosine and poly).
    """

    def __init__(self, base_lr: float, total_steps: int, schedule: str = "cosine", power: float = 1.0,
                 lr_min: float = 0.0) -> None:
        super().__init__(base_lr, total_steps)
        if schedule not in ("cosine", "poly", "constant"):
            raise ConfigError("training.lr_schedule", schedule, "allowed values: cosine, poly, constant")
        self.kind = schedule
        self.power = power
        self.lr_min = lr_min

    def schedule(self, step: int) -> float:
        p = self.progress(step)
        if self.kind == "constant":
            return 1.0
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            shape = (1.0 - p) ** self.power
        return self.lr_min + (1.0 - self.lr_min) * shape


class ComplexityAwareLR(LRPolicy):
    """CaLR: ``lr_t(a) = lr0 * [floor + (1 - floor) * (1 - t/T)^gamma(a)]``.

    ``gamma`` maps ``log C(a)`` linearly from ``gamma_max`` at the smallest subnet
    (``C_min``: its LR decays fastest, since small subnets converge first) to
    ``gamma_min`` at the largest (``C_max``: its LR stays high longest). Values outside
    ``[C_min, C_max]`` (estimated bounds) are clamped. ``floor`` is the optional
    ``eta_min`` of the DYNAS code (0 there).

    Parameters
    ----------
    complexity
        ``arch -> C(arch)``, e.g. a cached parameter count.
    bounds
        ``(C_min, C_max)`` over the whole space.
    """

    def __init__(self, base_lr: float, total_steps: int, complexity: Callable[[dict], float],
                 bounds: tuple[float, float], gamma_max: float = 4.0, gamma_min: Optional[float] = None,
                 floor: float = 0.0) -> None:
        super().__init__(base_lr, total_steps)
        gamma_min = 1.0 / gamma_max if gamma_min is None else gamma_min
        if not 0 < gamma_min <= gamma_max:
            raise ConfigError("training.gamma_min", gamma_min, f"must be in (0, gamma_max={gamma_max}]")
        c_min, c_max = float(bounds[0]), float(bounds[1])
        if c_min <= 0:
            # A subnet with no trainable parameter has C = 0; log needs a positive floor.
            c_min = 1.0
        if c_max <= c_min:
            warnings.warn(f"CaLR: every subnet has the same complexity ({c_max}); gamma is constant = 1")
        self.complexity = complexity
        self.c_min, self.c_max = c_min, max(c_max, c_min)
        self.gamma_max, self.gamma_min = float(gamma_max), float(gamma_min)
        self.floor = float(floor)
        self._gamma_cache: dict = {}

    def gamma(self, arch: dict) -> float:
        """The decay exponent of ``arch`` (cached by architecture)."""
        key = tuple(arch.items())
        cached = self._gamma_cache.get(key)
        if cached is not None:
            return cached
        if self.c_max <= self.c_min:
            value = 1.0
        else:
            c = min(max(float(self.complexity(arch)), self.c_min), self.c_max)
            frac = (math.log(self.c_max) - math.log(c)) / (math.log(self.c_max) - math.log(self.c_min))
            value = self.gamma_min + (self.gamma_max - self.gamma_min) * frac
        self._gamma_cache[key] = value
        return value

    def path_factor(self, step: int, arch: dict) -> float:
        return self.floor + (1.0 - self.floor) * (1.0 - self.progress(step)) ** self.gamma(arch)
