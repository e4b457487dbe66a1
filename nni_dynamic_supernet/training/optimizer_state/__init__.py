"""Optimizer-state policies: which momentum buffer an update uses (shared, or separated per cluster: MS)."""
from .momentum import OptimizerStatePolicy, SeparatedState, SharedState, default_cluster_labels

__all__ = ["OptimizerStatePolicy", "SharedState", "SeparatedState", "default_cluster_labels"]
