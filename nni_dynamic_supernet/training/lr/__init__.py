"""LR policies: what learning rate a subnet gets at step ``t`` (static, or complexity-aware: CaLR)."""
from .calr import ComplexityAwareLR, LRPolicy, StaticLR

__all__ = ["LRPolicy", "StaticLR", "ComplexityAwareLR"]
