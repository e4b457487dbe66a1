"""What an engine component's builder receives besides its own options: :class:`EngineContext`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import torch.nn as nn

from ..recipe import TrainingConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..spaces.complexity import ComplexityModel

__all__ = ["EngineContext"]


@dataclass
class EngineContext:
    """The run a training component is built for (path samplers, LR policies, optimizer states, update rules).

    Attributes
    ----------
    training
        The recipe's whole ``training`` section, for the core fields a component reads besides its options.
    seed
        The recipe's seed; a component with its own RNG seeds it from this.
    space
        ``{label: [choices]}`` of the supernet (``partition.space``).
    shared
        Labels carried by more than one supernet module (cell spaces such as NAS-Bench-201).
    partition
        The partition (one leaf unless few-shot / GM-NAS).
    base_lr
        The optimizer's base learning rate.
    total_steps
        Optimizer steps of the whole run.
    pristine_space
        The un-mutated space (parameter/FLOPs counting needs it), or ``None``.
    cluster_labels
        The MS clustering labels, set once the optimizer-state component is built (empty without MS).
    """

    training: TrainingConfig
    seed: int
    space: dict
    shared: set
    partition: Any
    base_lr: float
    total_steps: int
    pristine_space: Optional[nn.Module] = None
    cluster_labels: list = field(default_factory=list)

    def complexity(self) -> "ComplexityModel":
        """The space's (cached) complexity model: parameter counts and FLOPs of every subnet, and their bounds."""
        # NNI's profiler loads when a component counts: validating a recipe imports every component's module.
        from ..spaces.measures import complexity_model_for
        return complexity_model_for(self.pristine_space)
