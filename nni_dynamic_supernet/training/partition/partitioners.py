"""Partitioners: is there one supernet, or a tree of sub-supernets with their own weights?

A partition is a tree whose leaves are sub-supernets. Each leaf is a mask: label -> allowed
choices. Every architecture of the space belongs to exactly one leaf (:meth:`Partition.route`),
which is the sub-supernet that trains and evaluates it. Leaf ``i`` is weight slot ``i`` of the
engine (slot 0 is the original supernet): when a leaf splits, its first child keeps the slot and
the others take fresh slots at the end, so slots never move.

* :class:`OneShotPartition`: one leaf, the whole space.
* :class:`ExhaustivePartition`: few-shot NAS, a one-level tree that splits ``split_label``
  into singletons (branching factor = number of choices) before training.
* :class:`~.gm.GradientMatchingPartition` (in :mod:`.gm`): GM-NAS, splits at configured epochs;
  each leaf splits the label whose choices' gradients disagree most, into balanced groups.

Registered partitioners (``training.partition``): ``none`` and ``exhaustive`` here,
``gradient_matching`` in :mod:`.gm`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch.nn as nn

from ...components import PARTITIONERS
from ...errors import ConfigError
from ..paths.samplers import rng_state, set_rng_state

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import TrainingConfig

__all__ = ["Partition", "OneShotPartition", "ExhaustivePartition", "split_labels_of", "BUDGETS", "PartitionContext",
           "SubSupernetOptions", "ExhaustiveOptions"]

#: How the training steps are spread over the leaves (``training.partition_budget``).
#: ``per_leaf``: every leaf trains on every step, so each sub-supernet gets the whole phase it
#: exists in, as both papers' code does (one training run per sub-supernet); the cost grows
#: with the number of leaves. ``shared``: one leaf per step, drawn in proportion to its size,
#: so the leaves share the one-shot budget (the equal-compute ablation).
BUDGETS = ("per_leaf", "shared")


class Partition:
    """Base class: a tree of sub-supernets whose leaves cover the search space exactly once.

    Parameters
    ----------
    space
        Label -> choices of the whole search space.
    seed
        Seeds the leaf-sampling RNG.
    budget
        ``per_leaf`` or ``shared`` (see :data:`BUDGETS`).
    """

    def __init__(self, space: dict[str, list], seed: int = 0, budget: str = "shared") -> None:
        if budget not in BUDGETS:
            raise ConfigError("training.partition_budget", budget, f"allowed values: {', '.join(BUDGETS)}")
        self.budget = budget
        #: Calls of :meth:`step_leaves` (training steps of the loop, whatever the number of leaves trained).
        self.loop_steps = 0
        self.space = {label: list(choices) for label, choices in space.items()}
        self.leaves: list[dict[str, list]] = [dict(self.space)]
        self.rng = np.random.RandomState(seed + 7919)
        #: Tree nodes as plain data: id, parent, children, mask (restricted labels), slot (leaves), epoch, split.
        self.nodes: list[dict] = [_node(0, None, {}, 0, 0)]
        self._leaf_node: list[int] = [0]  # slot -> node id

    @property
    def num_leaves(self) -> int:
        """How many sub-supernets there are now."""
        return len(self.leaves)

    @property
    def max_leaves(self) -> int:
        """How many sub-supernets there can ever be (weight slots to allocate up front)."""
        return self.num_leaves

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

    def step_leaves(self) -> list[int]:
        """The leaves this training step trains, counted in each leaf's tree node.

        ``per_leaf``: every leaf, in slot order (each sub-supernet gets every step of the phase
        it exists in). ``shared``: one leaf drawn by :meth:`sample_leaf`.
        """
        self.loop_steps += 1
        leaves = list(range(self.num_leaves)) if self.budget == "per_leaf" else [self.sample_leaf()]
        for slot in leaves:
            node = self.nodes[self._leaf_node[slot]]
            node["steps"] = int(node.get("steps", 0)) + 1
        return leaves

    def budget_report(self) -> dict:
        """The training cost of the partition for results.json.

        ``steps_per_leaf``: per current leaf (slot order), the steps its weights were trained
        since they were last (re)initialised, inherited ancestors' steps included; ``total_steps``:
        path-training steps summed over every node of the tree; ``loop_steps``: training-loop
        steps (``total_steps / loop_steps`` is the cost factor over one-shot training).
        """
        per_leaf = []
        for node_id in self._leaf_node:
            steps, node = 0, self.nodes[node_id]
            while True:
                steps += int(node.get("steps", 0))
                if node.get("restarted") or node["parent"] is None:
                    break
                node = self.nodes[node["parent"]]
            per_leaf.append(steps)
        total = sum(int(n.get("steps", 0)) for n in self.nodes)
        return {"budget": self.budget, "steps_per_leaf": per_leaf, "total_steps": total,
                "loop_steps": self.loop_steps,
                "cost_factor": total / self.loop_steps if self.loop_steps else None}

    def describe(self) -> list[dict]:
        """Leaves as plain data for results.json: only the labels a leaf restricts."""
        return [self._restricted(leaf) for leaf in self.leaves]

    def tree(self) -> dict:
        """The partition tree for results.json: ``nodes`` (see :attr:`nodes`) and ``leaves`` (slot -> node id)."""
        return {"nodes": [dict(n) for n in self.nodes], "leaves": list(self._leaf_node)}

    def maybe_split(self, epochs_done: int, engine: Any, batches: Any) -> list[dict]:
        """Split the leaves whose split is due after ``epochs_done`` epochs; return the splits made.

        A no-op for partitions fixed at construction (one-shot, few-shot).
        """
        return []

    def split_due(self, epochs_done: int) -> bool:
        """Whether :meth:`maybe_split` would split after ``epochs_done`` epochs (never, by default)."""
        return False

    def schedule_step(self, step: int, total_steps: int) -> int:
        """The step the LR schedule sees at training step ``step`` (``step`` unless a restart re-runs it)."""
        return step

    def _restricted(self, leaf: dict) -> dict:
        return {label: list(allowed) for label, allowed in leaf.items() if len(allowed) != len(self.space[label])}

    def _split_leaf(self, slot: int, label: str, groups: Sequence[Sequence[Any]], epoch: int, info: dict) -> list[int]:
        """Replace leaf ``slot`` by one child per group of ``label``'s choices; return the children's slots."""
        parent = self.leaves[slot]
        parent_id = self._leaf_node[slot]
        slots = []
        for k, group in enumerate(groups):
            mask = {**parent, label: [c for c in parent[label] if c in set(group)]}
            child_slot = slot if k == 0 else len(self.leaves)
            if k == 0:
                self.leaves[slot] = mask
            else:
                self.leaves.append(mask)
                self._leaf_node.append(-1)
            node = _node(len(self.nodes), parent_id, self._restricted(mask), child_slot, epoch)
            self.nodes.append(node)
            self.nodes[parent_id]["children"].append(node["id"])
            self._leaf_node[child_slot] = node["id"]
            slots.append(child_slot)
        self.nodes[parent_id]["slot"] = None
        self.nodes[parent_id]["split"] = {"label": label, "groups": [list(g) for g in groups], "epoch": epoch, **info}
        return slots

    def state_dict(self) -> dict:
        """The leaves, the tree and the leaf-sampling RNG (plain data)."""
        return {"leaves": [{k: list(v) for k, v in leaf.items()} for leaf in self.leaves], "rng": rng_state(self.rng),
                "nodes": [_plain(n) for n in self.nodes], "leaf_nodes": list(self._leaf_node),
                "loop_steps": self.loop_steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.leaves = [{k: list(v) for k, v in leaf.items()} for leaf in state["leaves"]]
        set_rng_state(self.rng, state["rng"])
        if "nodes" in state:  # checkpoints from before the tree was recorded have flat leaves only
            self.nodes = [_plain(n) for n in state["nodes"]]
            self._leaf_node = [int(i) for i in state["leaf_nodes"]]
        self.loop_steps = int(state.get("loop_steps", 0))


class OneShotPartition(Partition):
    """A single supernet: one leaf holding the whole space."""


class ExhaustivePartition(Partition):
    """Few-shot NAS: one sub-supernet per choice of ``split_label``.

    The tree has one split, before training, with branching factor = number of choices
    (singleton groups: no scoring needed). The DYNAS reproduction splits NAS-Bench-201 on edge
    0; by default we split on the first label. Sub-supernets do not share weights. With the
    default ``budget='per_leaf'`` every sub-supernet trains for the whole run, as Zhao et al.
    and the DYNAS code do (one full training per sub-supernet).
    """

    def __init__(self, space: dict[str, list], split_label: Optional[str] = None, seed: int = 0,
                 budget: str = "per_leaf") -> None:
        super().__init__(space, seed, budget)
        label = split_label if split_label is not None else next(iter(space))
        if label not in space:
            raise ConfigError("training.split_label", label, f"not a label of the space; labels: {', '.join(space)}")
        self.split_label = label
        self._split_leaf(0, label, [[c] for c in self.space[label]], 0, {"rule": "exhaustive"})


def _node(node_id: int, parent: Optional[int], mask: dict, slot: Optional[int], epoch: int) -> dict:
    return {"id": node_id, "parent": parent, "children": [], "mask": mask, "slot": slot, "epoch": epoch,
            "split": None}


def _plain(node: dict) -> dict:
    return json.loads(json.dumps(node))


def split_labels_of(partition: Partition) -> Sequence[str]:
    """Labels a partition restricts (the MS clustering label must differ from these)."""
    return [label for label in partition.space
            if any(len(leaf[label]) != len(partition.space[label]) for leaf in partition.leaves)]


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class PartitionContext:
    """What a partitioner's builder receives besides its options.

    Attributes
    ----------
    space
        ``{label: [choices]}`` of the supernet.
    model
        The supernet (GM-NAS reads which labels own weights).
    seed
        The recipe's seed.
    epochs
        ``training.epochs`` (GM-NAS spreads its default split epochs over them).
    """

    space: dict
    model: nn.Module
    seed: int
    epochs: int


@dataclass(frozen=True)
class SubSupernetOptions:
    """How the training steps are spread over sub-supernets: ``training.partition_budget`` (see :data:`BUDGETS`)."""

    partition_budget: str = "per_leaf"

    def __post_init__(self) -> None:
        if self.partition_budget not in BUDGETS:
            raise ConfigError("training.partition_budget", self.partition_budget,
                              f"allowed values: {', '.join(BUDGETS)}")


@PARTITIONERS.register("none")
def build_one_shot(options: None, context: PartitionContext) -> OneShotPartition:
    """One supernet: a single leaf holding the whole space."""
    return OneShotPartition(context.space, seed=context.seed)


@dataclass(frozen=True)
class ExhaustiveOptions(SubSupernetOptions):
    """Options of few-shot NAS: the label split into one sub-supernet per choice (null: the first label)."""

    split_label: Optional[str] = None


def _check_exhaustive_space(options: ExhaustiveOptions, training: "TrainingConfig", model: nn.Module,
                            space: dict) -> None:
    if options.split_label is not None and options.split_label not in space:
        raise ConfigError("training.split_label", options.split_label,
                          f"not a label of the space; labels: {', '.join(space)}")


@PARTITIONERS.register("exhaustive", options=ExhaustiveOptions, check_space=_check_exhaustive_space)
def build_exhaustive(options: ExhaustiveOptions, context: PartitionContext) -> ExhaustivePartition:
    """Few-shot NAS: one sub-supernet per choice of a split label, split before training."""
    return ExhaustivePartition(context.space, options.split_label, seed=context.seed, budget=options.partition_budget)
