"""Update rules: how the losses of a step's paths become a weight update.

* :mod:`.gradient_step`: one optimizer step per state group (SPOS, FairNAS, CaLR + MS).
* :mod:`.reptile`: Reptile meta-training under strict fairness (SUMNAS).
"""
from .gradient_step import GradientStep, UpdateRule, group_paths
from .reptile import INNER_LR_AT_4_STEPS, ReptileStep, default_inner_lr

__all__ = ["UpdateRule", "GradientStep", "group_paths", "ReptileStep", "default_inner_lr", "INNER_LR_AT_4_STEPS"]
