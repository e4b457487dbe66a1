"""Smoothing schedules of importance sampling: how much of a distribution is importance, how much uniform.

PA&DA (Lu et al., CVPR 2023) mixes each importance distribution with the uniform one,
``p = coef * importance + (1 - coef) * uniform``, and raises the coefficient (δ for paths,
τ for data) linearly over training: early gradients say little, and a uniform share keeps
every path and every example reachable. The official code sets ``coef = epoch / epochs``
at the start of each epoch and uses it in that epoch's end-of-epoch update, so the first
update is purely uniform and the last one uses ``(E - 1) / E``, never 1 (``nasbench201/train_panda_201.py``).
The paper's ablation also tries decreasing and constant schedules; all three are here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["SmoothingSchedule", "SCHEDULES"]

#: Names accepted by :class:`SmoothingSchedule` (recipe fields ``pa_delta_schedule`` / ``da_tau_schedule``).
SCHEDULES: tuple[str, ...] = ("linear", "decreasing", "constant")


@dataclass(frozen=True)
class SmoothingSchedule:
    """The importance coefficient of the end-of-epoch update after epoch ``epoch`` (0-based).

    Parameters
    ----------
    kind
        ``linear``: ``scale * epoch / total`` (the official PA&DA schedule, 0 at the first
        update); ``decreasing``: ``scale * (1 - epoch / total)``; ``constant``: ``scale``.
    scale
        Multiplies the schedule; in ``[0, 1]``. ``kind="constant", scale=0`` is plain uniform
        sampling.

    Examples
    --------
    >>> SmoothingSchedule("linear")(0, 4), SmoothingSchedule("linear")(3, 4)
    (0.0, 0.75)
    """

    kind: str = "linear"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ConfigError("schedule", self.kind, f"allowed values: {', '.join(SCHEDULES)}")
        if not 0.0 <= float(self.scale) <= 1.0:
            raise ConfigError("schedule scale", self.scale, "must be in [0, 1]")

    def __call__(self, epoch: int, total_epochs: int) -> float:
        """The coefficient used by the update at the end of epoch ``epoch`` of ``total_epochs``."""
        fraction = min(max(epoch / max(total_epochs, 1), 0.0), 1.0)
        if self.kind == "linear":
            value = fraction
        elif self.kind == "decreasing":
            value = 1.0 - fraction
        else:
            value = 1.0
        return float(self.scale) * value
