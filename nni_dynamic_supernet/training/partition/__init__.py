"""Partitioners: one supernet, or a tree of sub-supernets with their own weights (GM-NAS).

* :mod:`.partitioners`: the partition tree and its budgets; one-shot and few-shot (exhaustive);
* :mod:`.gm`: GM-NAS, the tree grown by gradient matching during training, and its schedule;
* :mod:`.gradient_matching`: the gradient-matching scores of a label's choices;
* :mod:`.min_cut`: the balanced min-cut of a label's choices and the label to split;
* :mod:`.sub_supernets`: handing training state to the children of a split leaf.
"""
from .gm import RESTART_SCHEDULES, GradientMatchingPartition, even_split_epochs, split_schedule
from .partitioners import BUDGETS, ExhaustivePartition, OneShotPartition, Partition, split_labels_of

__all__ = ["Partition", "OneShotPartition", "ExhaustivePartition", "GradientMatchingPartition", "split_labels_of",
           "even_split_epochs", "split_schedule", "BUDGETS", "RESTART_SCHEDULES"]
