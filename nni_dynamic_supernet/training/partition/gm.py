"""GM-NAS: a partition tree grown by gradient matching during training (Hu et al., ICLR 2022).

:class:`GradientMatchingPartition` splits every leaf at the configured epochs, on the label
whose choices disagree most about the shared weights' gradients
(:mod:`.gradient_matching`), into balanced groups (:mod:`.min_cut`); the children inherit
or restart (:mod:`.sub_supernets`). Registered as ``training.partition: gradient_matching``,
with its options (:class:`GradientMatchingOptions`) and its checks against the space.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ...components import PARTITIONERS
from ...errors import ConfigError
from ..paths.samplers import rng_state, set_rng_state
from .gradient_matching import gradient_distances, shared_parameters
from .min_cut import EDGE_RULES, edge_stability, select_split
from .partitioners import Partition, PartitionContext, SubSupernetOptions
from .sub_supernets import inherit_leaf, restart_leaf

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import Recipe, TrainingConfig

__all__ = ["GradientMatchingPartition", "GradientMatchingOptions", "RESTART_SCHEDULES", "even_split_epochs",
           "split_schedule"]

#: The LR schedule of leaves restarted at GM-NAS's final split (``training.gm_restart_schedule``).
#: ``fresh``: a new schedule of the full length from its top, cut off at the end of training
#: (official ``fix_sche=0``); ``stretched``: a new schedule from its top spanning the steps left
#: (official ``fix_sche=1``); ``continue``: the global schedule carries on (no official mode).
RESTART_SCHEDULES = ("fresh", "stretched", "continue")


def even_split_epochs(epochs: int, splits: int) -> list[int]:
    """Split epochs spread evenly over training: ``s * epochs // (splits + 1)`` for ``s = 1..splits``.

    60 epochs and 2 splits give the paper's NB201 schedule, splits after 20 and 40 epochs.

    Parameters
    ----------
    epochs
        Training epochs.
    splits
        Number of splits.

    Returns
    -------
    list[int]
    """
    return [s * epochs // (splits + 1) for s in range(1, splits + 1)]


def split_schedule(split_epochs: Optional[Sequence[int]], branching: Sequence[int], epochs: int) -> list[int]:
    """The epochs after which GM-NAS splits: ``split_epochs``, or evenly spaced when null.

    Parameters
    ----------
    split_epochs
        ``training.split_epochs`` (``None``: :func:`even_split_epochs`).
    branching
        ``training.split_branching``: one split per factor.
    epochs
        ``training.epochs``.

    Returns
    -------
    list[int]
    """
    if split_epochs is not None:
        return [int(e) for e in split_epochs]
    return even_split_epochs(epochs, len(branching))


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
        restarted leaves at the schedule's top; ``continue`` carries the global schedule on.
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
        """The leaves of the full tree, prod(branching): every weight slot is allocated before training."""
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
        """Whether the next level's split epoch has come."""
        return self.levels_done < len(self.split_epochs) and self.split_epochs[self.levels_done] <= epochs_done

    def maybe_split(self, epochs_done: int, engine: Any, batches: Callable) -> list[dict]:
        """Run every level whose split epoch is ``<= epochs_done`` and has not run yet.

        ``batches(rng)`` returns a fresh training batch ``(x, y)`` drawn with ``rng`` (the
        scorer's own RNG, so the training loader is not consumed and a resumed run draws the
        same batches).
        """
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
        """The tree, the levels done, the restart step, the scorer's RNG and the initial weights (plain data)."""
        state = super().state_dict()
        state.update(levels_done=self.levels_done, restart_step=self.restart_step, score_rng=rng_state(self.score_rng),
                     initial_weights=self.initial_weights)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.levels_done = int(state["levels_done"])
        self.restart_step = state.get("restart_step")
        set_rng_state(self.score_rng, state["score_rng"])
        self.initial_weights = state.get("initial_weights")


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class GradientMatchingOptions(SubSupernetOptions):
    """Options of GM-NAS: when and how wide each level splits, the score, the edge rule and the restart."""

    split_epochs: Optional[list] = None  # epochs after which each level splits; None: evenly spaced (60 -> 20, 40)
    split_branching: list = field(default_factory=lambda: [2, 2])  # groups per split, one per level
    gm_batches: int = 100  # batches (each with a fresh context path) averaged by the gradient-matching score
    gm_edge_rule: str = "max_cut"  # max_cut (NB201 code), min_within (DARTS/Proxyless code), random (ablation)
    gm_restart: str = "final"  # final: leaves of the last split restart from the initial weights; none: inherit
    gm_labels: Optional[list] = None  # candidate labels to split; None: all
    gm_fix_schedule: bool = False  # shorthand for gm_restart_schedule: stretched (the official fix_sche=1)
    gm_restart_schedule: Optional[str] = None  # fresh (default), stretched or continue

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gm_batches <= 0:
            raise ConfigError("training.gm_batches", self.gm_batches, "must be a positive integer")
        if self.gm_edge_rule not in EDGE_RULES:
            raise ConfigError("training.gm_edge_rule", self.gm_edge_rule, f"allowed values: {', '.join(EDGE_RULES)}")
        if self.gm_restart not in ("final", "none"):
            raise ConfigError("training.gm_restart", self.gm_restart, "allowed values: final, none")


def _check_gradient_matching(options: GradientMatchingOptions, recipe: "Recipe", selected: bool) -> None:
    """The partition tree's fields; the label-dependent checks run when the space is known."""
    if not selected:
        return
    branching, epochs = options.split_branching, options.split_epochs
    if not branching:
        raise ConfigError("training.split_branching", branching, "give at least one branching factor, e.g. [2, 2]")
    if any(b < 2 for b in branching):
        raise ConfigError("training.split_branching", branching, "every branching factor must be >= 2")
    if epochs is not None:
        if len(epochs) != len(branching):
            raise ConfigError("training.split_epochs", epochs, f"give one epoch per branching factor "
                              f"({len(branching)} in training.split_branching)")
        if any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ConfigError("training.split_epochs", epochs, "must be strictly increasing")
        total = recipe.training.epochs
        if epochs[0] < 0 or epochs[-1] >= total:
            raise ConfigError("training.split_epochs", epochs, f"each must be in [0, training.epochs) = [0, {total})")
    if options.gm_restart_schedule is not None and options.gm_restart_schedule not in RESTART_SCHEDULES:
        raise ConfigError("training.gm_restart_schedule", options.gm_restart_schedule,
                          f"allowed values: {', '.join(RESTART_SCHEDULES)}, or null (fresh; stretched with "
                          f"gm_fix_schedule: true)")
    if options.gm_labels is not None and not options.gm_labels:
        raise ConfigError("training.gm_labels", options.gm_labels, "give at least one label, or null for all labels")
    t = recipe.training
    if t.update_rule == "reptile" and t.inner_state == "persistent":
        raise ConfigError("training.inner_state", t.inner_state, "gradient_matching does not hand a persistent "
                          "Reptile inner state to new leaves; use inner_state: reset")


def _check_gm_space(options: GradientMatchingOptions, training: "TrainingConfig", model: nn.Module,
                    space: dict) -> None:
    """GM splits a label into groups of choices with weights of their own: every candidate label must own some."""
    owned = _weighted_labels(model)
    for label in options.gm_labels or []:
        if label not in space:
            raise ConfigError("training.gm_labels", label, f"not a label of the space; labels: {', '.join(space)}")
        if label not in owned:
            raise ConfigError("training.gm_labels", label, "its choices own no distinct weights (a sliced width or "
                              "kernel, a depth or an input choice); GM splits labels whose choices are modules "
                              f"of their own: {', '.join(owned) or 'none in this space'}")
    if not options.gm_labels and not owned:
        raise ConfigError("training.partition", "gradient_matching", "no label of this space has choices with "
                          "weights of their own to split; use partition: none or exhaustive")


@PARTITIONERS.register("gradient_matching", options=GradientMatchingOptions, check=_check_gradient_matching,
                       check_space=_check_gm_space)
def build_gradient_matching(options: GradientMatchingOptions, context: PartitionContext) -> GradientMatchingPartition:
    """GM-NAS: sub-supernets split during training where ops disagree on the shared weights' gradients."""
    # Without gm_labels: every label whose choices own weights (all of a LayerChoice space).
    owned = set(_weighted_labels(context.model))
    labels = options.gm_labels or [label for label in context.space if label in owned]
    return GradientMatchingPartition(context.space, split_schedule(options.split_epochs, options.split_branching,
                                                                   context.epochs),
                                     options.split_branching, batches=options.gm_batches,
                                     edge_rule=options.gm_edge_rule, restart=options.gm_restart, labels=labels,
                                     seed=context.seed, fix_schedule=options.gm_fix_schedule,
                                     restart_schedule=options.gm_restart_schedule, budget=options.partition_budget)


def _weighted_labels(model: nn.Module) -> list[str]:
    """The labels of ``model`` whose choices own distinct weights."""
    # NNI's one-shot modules (and Lightning) load when a supernet is partitioned, not when partitioners register.
    from ...supernet.modules import op_modules, weighted_labels
    return weighted_labels(op_modules(model))
