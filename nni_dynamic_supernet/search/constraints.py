"""Params / FLOPs constraints for searchers, checked against the space's bounds up front."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ConfigError

__all__ = ["RangeConstraint"]


@dataclass
class RangeConstraint:
    """Accept an architecture when ``lo <= fn(arch) <= hi`` (either bound optional).

    ``field`` names the recipe fields in error messages (``search.constraint``).
    """

    fn: Callable[[dict], float]
    lo: Optional[float] = None
    hi: Optional[float] = None
    metric: str = "params"
    field: str = "search.constraint"

    def __call__(self, arch: dict) -> bool:
        value = self.fn(arch)
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def check_feasible(self, bounds: tuple[float, float]) -> None:
        """Raise ConfigError when no architecture of a space with these ``(min, max)`` bounds can satisfy it."""
        c_min, c_max = bounds
        if self.hi is not None and self.hi < c_min:
            raise ConfigError(f"{self.field}_max", self.hi,
                              f"is below the smallest subnet's {self.metric} ({c_min:.0f}); raise it")
        if self.lo is not None and self.lo > c_max:
            raise ConfigError(f"{self.field}_min", self.lo,
                              f"is above the largest subnet's {self.metric} ({c_max:.0f}); lower it")
