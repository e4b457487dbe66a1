"""CaLR: a per-subnet learning-rate decay set by the subnet's complexity (Jeon et al., CVPR 2025).

A policy splits the LR into two factors (:class:`~.policy.LRPolicy`): the global
``schedule(t)`` (1 here) and the per-subnet ``path_factor(t, arch)``, the CaLR decay
``(1 - t/T)^gamma(arch)``. The update rule applies the per-path factor as the LR when a step
trains one path, and as a loss weight when a step accumulates several paths (the CaLR
paper's FairNAS code).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

from ...components import LR_POLICIES
from ...errors import ConfigError
from ..context import EngineContext
from .policy import LRPolicy

__all__ = ["ComplexityAwareLR", "CalrOptions"]


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
        """The CaLR decay of arch at step: floor + (1 - floor) * (1 - t/T)^gamma(arch)."""
        return self.floor + (1.0 - self.floor) * (1.0 - self.progress(step)) ** self.gamma(arch)


@dataclass(frozen=True)
class CalrOptions:
    """Options of CaLR: the exponent range, the LR floor and which complexity sets a subnet's exponent."""

    gamma_max: float = 4.0
    gamma_min: Optional[float] = None  # None: 1 / gamma_max
    lr_floor: float = 0.0
    complexity_metric: str = "params"

    def __post_init__(self) -> None:
        if not self.gamma_max > 0:
            raise ConfigError("training.gamma_max", self.gamma_max, "must be > 0")
        if self.complexity_metric not in ("params", "flops"):
            raise ConfigError("training.complexity_metric", self.complexity_metric, "allowed values: params, flops")
        if self.lr_floor < 0:
            raise ConfigError("training.lr_floor", self.lr_floor, "must be >= 0")
        gmin = self.gamma_min if self.gamma_min is not None else 1.0 / self.gamma_max
        if gmin <= 0:
            raise ConfigError("training.gamma_min", self.gamma_min, "must be > 0")
        if gmin > self.gamma_max:
            raise ConfigError("training.gamma_min", self.gamma_min,
                              f"must be <= training.gamma_max ({self.gamma_max}); swap them or omit gamma_min")
        if not 0 <= self.lr_floor < 1:
            raise ConfigError("training.lr_floor", self.lr_floor, "must be in [0, 1): a fraction of the base LR")


@LR_POLICIES.register("calr", options=CalrOptions)
def build_calr(options: CalrOptions, context: EngineContext) -> ComplexityAwareLR:
    """CaLR: each subnet's LR decays with an exponent set by its parameter count (or FLOPs)."""
    complexity = context.complexity()
    metric = options.complexity_metric
    fn = complexity.params if metric == "params" else complexity.flops
    return ComplexityAwareLR(context.base_lr, context.total_steps, fn, complexity.bounds(metric),
                             gamma_max=options.gamma_max, gamma_min=options.gamma_min, floor=options.lr_floor)
