"""Partitioners: one supernet, or a tree of sub-supernets with their own weights (GM-NAS).

* :mod:`.partitioners`: the partition tree, its budgets and split schedule;
* :mod:`.gradient_matching`: the gradient-matching scores of a label's choices;
* :mod:`.min_cut`: the balanced min-cut of a label's choices and the label to split;
* :mod:`.sub_supernets`: handing training state to the children of a split leaf.
"""
from .partitioners import (BUDGETS, RESTART_SCHEDULES, ExhaustivePartition, GradientMatchingPartition, OneShotPartition,
                           Partition, even_split_epochs, split_labels_of)

__all__ = ["Partition", "OneShotPartition", "ExhaustivePartition", "GradientMatchingPartition", "split_labels_of",
           "even_split_epochs", "BUDGETS", "RESTART_SCHEDULES"]
