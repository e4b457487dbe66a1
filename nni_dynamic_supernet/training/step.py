"""What an update rule may use of the engine: the step helpers, as an interface.

:class:`~nni_dynamic_supernet.training.engine.SupernetEngine` runs a step and hands itself to
its update rule (``update_rule.apply(engine, leaf, paths, batch, step)``); the rule calls back
the helpers listed here. Typing the rules against this :class:`StepHelpers` protocol instead
of the engine class keeps the dependency one way: the engine imports the update rules, and
the rules import only this module.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Protocol

import torch
import torch.nn as nn

__all__ = ["StepHelpers"]


class StepHelpers(Protocol):
    """The part of the engine an update rule calls during a training step."""

    #: One supernet per partition leaf, and per leaf ``(label, choice, module)`` of each candidate op.
    models: list[nn.Module]
    op_modules: list[list]
    #: The step's components: how a loss is computed and back-propagated, and the policies that
    #: give a path its LR factor, loss weight and optimizer-state key.
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    backward: Callable[[torch.Tensor], None]
    lr_policy: Any
    path_sampler: Any
    state_policy: Any
    #: The float16 ``GradScaler`` (``None`` without one) and the steps it skipped on overflow.
    scaler: Any
    scaler_skips: int

    @property
    def params(self) -> list[nn.Parameter]:
        """Every parameter the optimizer updates, in a fixed order."""

    def forward(self, leaf: int, arch: dict, x: torch.Tensor) -> torch.Tensor:
        """Run ``arch`` of sub-supernet ``leaf`` on ``x``."""

    def zero_grad(self) -> None:
        """Drop every gradient (``set_to_none``), so ops the step does not use are left alone."""

    def optimizer_step(self, key: Hashable, step: int, arch: Optional[dict], grads_scaled: bool = True) -> bool:
        """Check and clip the gradients, select optimizer state ``key``, set the LR and step."""

    def inverse_loss_scale(self) -> Optional[torch.Tensor]:
        """``1 / scale`` of the float16 GradScaler as a device tensor, or ``None`` without one."""

    def observe_examples(self, index: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Give the data sampler each example's importance score."""

    def observe_ops(self, leaf: int, arch: dict) -> None:
        """Give the path sampler the per-op gradient norms of ``arch`` (after the optimizer step)."""
