"""Partitioners: is there one supernet, or several sub-supernets with their own weights?

A partition is a list of leaves. Each leaf is a mask: label -> allowed choices. Every
architecture of the space belongs to exactly one leaf (:meth:`Partition.route`), which
is the sub-supernet that trains and evaluates it. Leaf ``0`` is the original supernet;
the engine keeps one weight copy per leaf.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .paths import rng_state, set_rng_state

__all__ = ["Partition", "OneShotPartition", "ExhaustivePartition"]


class Partition:
    """Base class: a set of leaves (masks) covering the search space exactly once."""

    def __init__(self, space: dict[str, list], seed: int = 0) -> None:
        self.space = {label: list(choices) for label, choices in space.items()}
        self.leaves: list[dict[str, list]] = [dict(self.space)]
        self.rng = np.random.RandomState(seed + 7919)

    @property
    def num_leaves(self) -> int:
        """How many sub-supernets there are."""
        return len(self.leaves)

    def route(self, arch: dict) -> int:
        """The leaf that owns ``arch``."""
        for i, leaf in enumerate(self.leaves):
            if all(arch[label] in allowed for label, allowed in leaf.items()):
                return i
        raise ConfigError("arch", arch, "belongs to no sub-supernet; check its labels and choices against the space")

    def leaf_size(self, leaf: int) -> int:
        """Number of architectures in ``leaf``."""
        return int(np.prod([len(v) for v in self.leaves[leaf].values()], dtype=np.float64))

    def sample_leaf(self) -> int:
        """Draw a leaf with probability proportional to its size, so paths stay uniform over the space."""
        if self.num_leaves == 1:
            return 0
        sizes = np.array([self.leaf_size(i) for i in range(self.num_leaves)], dtype=np.float64)
        return int(self.rng.choice(self.num_leaves, p=sizes / sizes.sum()))

    def describe(self) -> list[dict]:
        """Leaves as plain data for results.json: only the labels a leaf restricts."""
        return [{label: allowed for label, allowed in leaf.items() if len(allowed) != len(self.space[label])}
                for leaf in self.leaves]

    def state_dict(self) -> dict:
        """The leaves and the leaf-sampling RNG."""
        return {"leaves": [{k: list(v) for k, v in leaf.items()} for leaf in self.leaves], "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.leaves = [{k: list(v) for k, v in leaf.items()} for leaf in state["leaves"]]
        set_rng_state(self.rng, state["rng"])


class OneShotPartition(Partition):
    """A single supernet: one leaf holding the whole space."""


class ExhaustivePartition(Partition):
    """Few-shot NAS: one sub-supernet per choice of ``split_label``.

    The DYNAS reproduction splits NAS-Bench-201 on edge 0; by default we split on the
    first label. Sub-supernets do not share weights.
    """

    def __init__(self, space: dict[str, list], split_label: Optional[str] = None, seed: int = 0) -> None:
        super().__init__(space, seed)
        label = split_label if split_label is not None else next(iter(space))
        if label not in space:
            raise ConfigError("training.split_label", label, f"not a label of the space; labels: {', '.join(space)}")
        self.split_label = label
        self.leaves = [{**self.space, label: [choice]} for choice in self.space[label]]


def split_labels_of(partition: Partition) -> Sequence[str]:
    """Labels a partition restricts (the MS clustering label must differ from these)."""
    return [label for label in partition.space
            if any(len(leaf[label]) != len(partition.space[label]) for leaf in partition.leaves)]
