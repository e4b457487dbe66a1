"""Update rules: how the losses of a step's paths become a weight update.

:class:`GradientStep` covers SPOS (one path), FairNAS (``m`` accumulated paths) and
FairNAS + CaLR + MS (paths weighted by their CaLR factor, one cluster stepped).

Gradients of ops a step did not use
-----------------------------------
Gradients are zeroed with ``set_to_none=True``, so a parameter that no path of the
step touched has ``grad is None`` and torch optimizers skip it: it gets neither weight
decay nor a momentum update. This is what the official SPOS code obtains by nulling
all-zero gradients, and it differs from the DYNAS code (torch 1.8 ``zero_grad``
filled zeros, so stale momentum kept moving unused ops).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Hashable

import torch

from ...components import UPDATE_RULES
from ..context import EngineContext

if TYPE_CHECKING:  # pragma: no cover
    from ..step import StepHelpers

__all__ = ["UpdateRule", "GradientStep", "group_paths"]


def group_paths(engine: "StepHelpers", leaf: int, paths: list[dict]) -> dict[Hashable, list[dict]]:
    """Group a step's paths by optimizer-state key, keeping their order.

    Paths in one group are accumulated into one optimizer step; different groups
    (several MS clusters in one step) are stepped one after the other.
    """
    groups: dict[Hashable, list[dict]] = {}
    for arch in paths:
        groups.setdefault(engine.state_policy.key(arch, leaf), []).append(arch)
    return groups


class UpdateRule:
    """Base class of update rules."""

    def apply(self, engine: "StepHelpers", leaf: int, paths: list[dict], batch: tuple,
              step: int) -> torch.Tensor:
        """Train ``paths`` of sub-supernet ``leaf`` on ``batch``; return the mean loss (detached)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Update rules keep no state beyond the optimizer; nothing to save."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore."""


class GradientStep(UpdateRule):
    """One optimizer step per state group, with the group's path gradients summed.

    With one path the LR is ``base * schedule(t) * path_factor(t, a)``. With several,
    the LR is ``base * schedule(t)`` and each path's loss is multiplied by its
    ``path_factor`` (CaLR's FairNAS semantics; 1 for static policies, so plain FairNAS
    sums the gradients).
    """

    def apply(self, engine: "StepHelpers", leaf: int, paths: list[dict], batch: tuple,
              step: int) -> torch.Tensor:
        """One optimizer step per state group on the group's accumulated path losses; returns the mean loss."""
        x, y, index = batch
        total = torch.zeros((), device=x.device)
        for key, group in group_paths(engine, leaf, paths).items():
            engine.zero_grad()
            multi = len(group) > 1
            for arch in group:
                logits = engine.forward(leaf, arch, x)
                loss = engine.criterion(logits, y)
                weight = engine.lr_policy.path_factor(step, arch) if multi else 1.0
                # PA's optional 1 / (N p) importance weight; 1 for every other path sampler.
                weight = weight * engine.path_sampler.loss_weight(arch)
                engine.backward(loss * weight if weight != 1.0 else loss)
                engine.observe_examples(index, logits, y)
                total = total + loss.detach()
            lr_arch = None if multi else group[0]
            engine.optimizer_step(key, step, lr_arch)
            for arch in group:
                engine.observe_ops(leaf, arch)  # after the step: the clipped gradients it used
        return total / len(paths)


@UPDATE_RULES.register("gradient")
def build_gradient(options: None, context: EngineContext) -> GradientStep:
    """One optimizer step per state group on the step's accumulated path losses."""
    return GradientStep()
