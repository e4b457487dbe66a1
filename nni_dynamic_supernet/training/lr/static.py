"""The static LR policy: the same schedule for every subnet (cosine, poly or constant)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...components import LR_POLICIES
from ...errors import ConfigError
from ..context import EngineContext
from .policy import LRPolicy

__all__ = ["StaticLR", "StaticLROptions", "SCHEDULES"]

#: The schedule shapes of ``training.lr_schedule``.
SCHEDULES: tuple[str, ...] = ("cosine", "poly", "constant")


class StaticLR(LRPolicy):
    """The same schedule for every subnet: ``cosine``, ``poly`` (power ``p``) or ``constant``.

    ``lr_min`` is the final LR as a fraction of the base LR (cosine and poly).
    """

    def __init__(self, base_lr: float, total_steps: int, schedule: str = "cosine", power: float = 1.0,
                 lr_min: float = 0.0) -> None:
        super().__init__(base_lr, total_steps)
        if schedule not in SCHEDULES:
            raise ConfigError("training.lr_schedule", schedule, f"allowed values: {', '.join(SCHEDULES)}")
        self.kind = schedule
        self.power = power
        self.lr_min = lr_min

    def schedule(self, step: int) -> float:
        """The schedule's multiplier of the base LR at step (cosine, poly or constant, floored at lr_min)."""
        p = self.progress(step)
        if self.kind == "constant":
            return 1.0
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            shape = (1.0 - p) ** self.power
        return self.lr_min + (1.0 - self.lr_min) * shape


@dataclass(frozen=True)
class StaticLROptions:
    """Options of the static policy: the schedule, poly's power and the final LR as a fraction of the base LR."""

    lr_schedule: str = "cosine"
    poly_power: float = 1.0
    lr_min: float = 0.0

    def __post_init__(self) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError("training.lr_schedule", self.lr_schedule, f"allowed values: {', '.join(SCHEDULES)}")
        if not self.poly_power > 0:
            raise ConfigError("training.poly_power", self.poly_power, "must be > 0")
        if self.lr_min < 0:
            raise ConfigError("training.lr_min", self.lr_min, "must be >= 0")


@LR_POLICIES.register("static", options=StaticLROptions)
def build_static(options: StaticLROptions, context: EngineContext) -> StaticLR:
    """The same LR schedule for every subnet."""
    return StaticLR(context.base_lr, context.total_steps, options.lr_schedule, power=options.poly_power,
                    lr_min=options.lr_min)
