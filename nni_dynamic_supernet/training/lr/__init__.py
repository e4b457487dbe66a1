"""LR policies: what learning rate a subnet gets at step ``t``.

* :mod:`.policy`: the base class and its two factors (a global schedule, a per-subnet factor);
* :mod:`.static`: the same schedule for every subnet (``training.lr_policy: static``);
* :mod:`.calr`: complexity-aware LR, CaLR (``training.lr_policy: calr``).
"""
from .calr import ComplexityAwareLR
from .policy import LRPolicy
from .static import StaticLR

__all__ = ["LRPolicy", "StaticLR", "ComplexityAwareLR"]
