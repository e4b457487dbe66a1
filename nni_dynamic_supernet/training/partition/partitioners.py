"""Partitioners: is there one supernet, or a tree of sub-supernets with their own weights?

A partition is a tree whose leaves are sub-supernets. Each leaf is a mask: label -> allowed
choices. Every architecture of the space belongs to exactly one leaf (:meth:`Partition.route`),
which is the sub-supernet that trains and evaluates it. Leaf ``i`` is weight slot ``i`` of the
engine (slot 0 is the original supernet): when a leaf splits, its first child keeps the slot and
the others take fresh slots at the end, so slots never move.

* :class:`OneShotPartition`: one leaf, the whole space.
* :class:`ExhaustivePartition`: few-shot NAS, a one-level tree that splits ``split_label``
  into singletons (branching factor = number of choices) before training.
* :class:`GradientMatchingPartition`: GM-NAS, splits at configured epochs; each leaf splits
  the label whose choices' gradients disagree most, into balanced groups (min-cut).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ...recipe import RESTART_SCHEDULES, even_split_epochs
from ..paths.samplers import rng_state, set_rng_state
from .min_cut import EDGE_RULES, select_split

__all__ = ["Partition", "OneShotPartition", "ExhaustivePartition", "GradientMatchingPartition", "split_labels_of",
           "even_split_epochs", "BUDGETS", "RESTART_SCHEDULES"]

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


class GradientMatchingPartition(Partition):
    """GM-NAS: a partition tree grown by gradient matching during training (Hu et al., ICLR 2022).

    At each split epoch every current leaf is split: each candidate label (not yet split in
    that leaf, with at least as many choices as the branching factor) is scored by
    :func:`~nni_dynamic_supernet.training.partition.gradient_matching.gradient_distances`; its choices
    are min-cut into balanced groups; the edge rule picks the label. Children of a non-final
    split inherit the parent's weights and all its optimizer states; at the final split they
    restart from the initial weights with empty optimizer states (``restart='final'``) or
    inherit too (``restart='none'``).

    All ``prod(branching)`` weight slots are allocated before training (:attr:`max_leaves`). With
    momentum separation the clustering label is chosen before any split, so GM may later split
    it; a leaf then clusters on the choices it keeps (groups hold >= 2 choices unless B = n).

    Parameters
    ----------
    space
        Label -> choices.
    split_epochs
        Epochs after which each level splits, non-decreasing (0: before training).
    branching
        Branching factor of each level (same length as ``split_epochs``).
    batches
        Repeats R of the gradient-matching score (fresh batch and context path each).
    edge_rule
        ``max_cut``, ``min_within`` or ``random`` (see :mod:`.min_cut`).
    restart
        ``final`` or ``none``.
    fix_schedule
        Shorthand for ``restart_schedule='stretched'`` (the official ``fix_sche=1``) when
        ``restart_schedule`` is not given.
    restart_schedule
        LR schedule of the leaves restarted at the final split (:data:`RESTART_SCHEDULES`);
        default ``fresh`` (official ``fix_sche=0``). Either official mode starts the
        restarted leaves at the schedule's top; ``continue`` is the earlier behaviour.
    budget
        ``per_leaf`` (default: every leaf trains on every step, as the official code trains
        each child for the whole phase) or ``shared`` (see :data:`BUDGETS`).
    labels
        Candidate labels (``None``: all).
    seed
        Seeds the leaf-sampling RNG and the scorer's RNG (batches, context paths).
    """

    def __init__(self, space: dict[str, list], split_epochs: Sequence[int], branching: Sequence[int],
                 batches: int = 100, edge_rule: str = "max_cut", restart: str = "final",
                 labels: Optional[Sequence[str]] = None, seed: int = 0, fix_schedule: bool = False,
                 restart_schedule: Optional[str] = None, budget: str = "per_leaf") -> None:
        super().__init__(space, seed, budget)
        if restart_schedule is None:
            restart_schedule = "stretched" if fix_schedule else "fresh"
        if restart_schedule not in RESTART_SCHEDULES:
            raise ConfigError("training.gm_restart_schedule", restart_schedule,
                              f"allowed values: {', '.join(RESTART_SCHEDULES)}")
        if len(split_epochs) != len(branching):
            raise ConfigError("training.split_branching", list(branching),
                              f"give one branching factor per split epoch ({len(split_epochs)})")
        if edge_rule not in EDGE_RULES:
            raise ConfigError("training.gm_edge_rule", edge_rule, f"allowed values: {', '.join(EDGE_RULES)}")
        if restart not in ("final", "none"):
            raise ConfigError("training.gm_restart", restart, "allowed values: final, none")
        self.labels = list(labels) if labels else list(self.space)
        for label in self.labels:
            if label not in self.space:
                raise ConfigError("training.gm_labels", label, f"not a label of the space; labels: {', '.join(space)}")
        for b in branching:
            fits = [label for label in self.labels if len(self.space[label]) >= b]
            if b < 2 or not fits:
                raise ConfigError("training.split_branching", b, "each factor must be >= 2 and at most the number of "
                                  "choices of some candidate label")
        if len(branching) > len(self.labels):
            raise ConfigError("training.split_branching", list(branching),
                              f"more splits than candidate labels ({len(self.labels)}); a leaf splits a label once")
        self.split_epochs = [int(e) for e in split_epochs]
        self.branching = [int(b) for b in branching]
        self.batches = int(batches)
        self.edge_rule = edge_rule
        self.restart = restart
        self.levels_done = 0
        self.restart_schedule = restart_schedule
        self.restart_step: Optional[int] = None
        self.score_rng = np.random.RandomState(seed + 104729)
        #: Weights every leaf restarts from at the final split (set by the bridge from the untrained supernet).
        self.initial_weights: Optional[dict[str, torch.Tensor]] = None

    @property
    def max_leaves(self) -> int:
        return int(math.prod(self.branching))

    def remember_initial_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Keep a copy of the untrained supernet's ``state_dict`` (needed by ``restart='final'``)."""
        if self.initial_weights is None and self.restart == "final" and self.levels_done < len(self.branching):
            self.initial_weights = {k: v.detach().clone() for k, v in state.items()}

    def candidate_labels(self, slot: int, groups: int) -> list[str]:
        """Labels leaf ``slot`` may split into ``groups`` groups: unsplit, with enough choices."""
        leaf = self.leaves[slot]
        return [label for label in self.labels
                if len(leaf[label]) == len(self.space[label]) and len(leaf[label]) >= groups]

    def split_due(self, epochs_done: int) -> bool:
        return self.levels_done < len(self.split_epochs) and self.split_epochs[self.levels_done] <= epochs_done

    def maybe_split(self, epochs_done: int, engine: Any, batches: Callable) -> list[dict]:
        """Run every level whose split epoch is ``<= epochs_done`` and has not run yet.

        ``batches(rng)`` returns a fresh training batch ``(x, y)`` drawn with ``rng`` (the
        scorer's own RNG, so the training loader is not consumed and a resumed run draws the
        same batches).
        """
        from .sub_supernets import inherit_leaf, restart_leaf
        made = []
        while self.split_due(epochs_done):
            level = self.levels_done
            final = level == len(self.split_epochs) - 1
            groups = self.branching[level]
            for slot in range(self.num_leaves):  # the range is fixed before this level's children exist
                split = self._score_and_split(slot, groups, engine, batches, epochs_done, level)
                if split is None:
                    continue
                if final and self.restart == "final":
                    if self.initial_weights is None:
                        raise RuntimeError("restart='final' needs remember_initial_weights() before training")
                    for child in split["slots"]:
                        restart_leaf(engine, child, self.initial_weights)
                        self.nodes[self._leaf_node[child]]["restarted"] = True
                else:
                    for child in split["slots"][1:]:
                        inherit_leaf(engine, slot, child)
                made.append(split)
            self.levels_done += 1
            if final:
                self.initial_weights = None  # no longer needed: keep checkpoints small
                if self.restart == "final":
                    self.restart_step = int(getattr(engine, "steps_done", 0))
        return made

    def _score_and_split(self, slot: int, groups: int, engine: Any, batches: Callable, epoch: int,
                         level: int) -> Optional[dict]:
        from .gradient_matching import gradient_distances, shared_parameters
        from .min_cut import edge_stability
        labels = self.candidate_labels(slot, groups)
        if not labels:
            return None
        leaf = self.leaves[slot]
        distances: dict[str, np.ndarray] = {}
        repeats: dict[str, np.ndarray] = {}
        if self.edge_rule == "random":
            distances = {label: np.zeros((len(leaf[label]),) * 2) for label in labels}
        else:
            model = engine.models[slot]

            def forward(arch: dict, x: torch.Tensor) -> torch.Tensor:
                return engine.forward(slot, arch, x)

            for label in labels:
                shared = shared_parameters(model, engine.op_modules[slot], label)
                distances[label], repeats[label] = gradient_distances(
                    forward, engine.criterion, model, shared, leaf, label, batches, self.batches, self.score_rng,
                    return_repeats=True)
        choice = select_split(distances, groups, self.edge_rule, self.score_rng)
        label = choice["label"]
        named = [[leaf[label][i] for i in g] for g in choice["groups"]]
        info = {"level": level, "rule": self.edge_rule, "batches": self.batches,
                "similarity": (1.0 - distances[label]).tolist() if self.edge_rule != "random" else None,
                "choices": list(leaf[label]),
                "cut_cost": choice["candidates"].get(label, {}).get("across"),
                "within_cost": choice["candidates"].get(label, {}).get("within"),
                "candidates": {k: {"groups": [[leaf[k][i] for i in g] for g in v["groups"]],
                                   "within": v["within"], "across": v["across"]}
                               for k, v in choice["candidates"].items()},
                "stability": edge_stability(repeats, choice, self.edge_rule, groups) if repeats else None}
        slots = self._split_leaf(slot, label, named, epoch, info)
        return {"slot": slot, "label": label, "groups": named, "slots": slots, "epoch": epoch, "level": level}

    def schedule_step(self, step: int, total_steps: int) -> int:
        """The schedule position of ``step``: after a final-split restart, a new schedule from its top.

        ``fresh`` (official ``fix_sche=0``: a new cosine over the whole run, of which the
        steps left are used) gives ``step - restart``; ``stretched`` (``fix_sche=1``: a new
        cosine over the steps left) maps them onto the whole schedule; ``continue`` keeps ``step``.
        """
        if self.restart_step is None or self.restart_schedule == "continue":
            return step
        start = self.restart_step
        if self.restart_schedule == "fresh":
            return step - start
        if total_steps <= start:
            return step
        return int((step - start) * total_steps / (total_steps - start))

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(levels_done=self.levels_done, restart_step=self.restart_step, score_rng=rng_state(self.score_rng),
                     initial_weights=self.initial_weights)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.levels_done = int(state["levels_done"])
        self.restart_step = state.get("restart_step")
        set_rng_state(self.score_rng, state["score_rng"])
        self.initial_weights = state.get("initial_weights")


def _node(node_id: int, parent: Optional[int], mask: dict, slot: Optional[int], epoch: int) -> dict:
    return {"id": node_id, "parent": parent, "children": [], "mask": mask, "slot": slot, "epoch": epoch,
            "split": None}


def _plain(node: dict) -> dict:
    import json
    return json.loads(json.dumps(node))


def split_labels_of(partition: Partition) -> Sequence[str]:
    """Labels a partition restricts (the MS clustering label must differ from these)."""
    return [label for label in partition.space
            if any(len(leaf[label]) != len(partition.space[label]) for leaf in partition.leaves)]
