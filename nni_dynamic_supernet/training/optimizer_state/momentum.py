"""Optimizer-state policies: which momentum buffer an update uses.

``SharedState`` keeps the optimizer's one state (SPOS). ``SeparatedState`` (momentum
separation, MS) keeps one optimizer state per cluster of similar subnets, a cluster
being the tuple of choices on the clustering labels. Switching clusters swaps the
torch optimizer's ``state`` dict *by reference*, so it works with any torch optimizer
(SGD, Adam, ...) and costs no copy. States are allocated the first time a cluster
is used.

Registered optimizer states (``training.optimizer_state``): ``shared`` and ``separated``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ...components import OPTIMIZER_STATES
from ...errors import ConfigError
from ..context import EngineContext
from ..partition.partitioners import Partition, split_labels_of

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import TrainingConfig

__all__ = ["OptimizerStatePolicy", "SharedState", "SeparatedState", "default_cluster_labels", "SeparatedOptions",
           "cluster_labels_for"]


class OptimizerStatePolicy:
    """Base class: maps an update (architecture, leaf) to an optimizer-state key."""

    def key(self, arch: dict, leaf: int = 0) -> Hashable:
        """The state key of an update that trains ``arch`` in sub-supernet ``leaf``."""
        return leaf

    def activate(self, optimizer: torch.optim.Optimizer, key: Hashable) -> None:
        """Point ``optimizer.state`` at the state of ``key`` (allocated on first use)."""
        states = self._states()
        if key not in states:
            states[key] = defaultdict(dict)
        optimizer.state = states[key]

    def _states(self) -> dict:
        if not hasattr(self, "_state_store"):
            self._state_store: dict = {}
        return self._state_store

    @property
    def num_states(self) -> int:
        """How many optimizer states exist so far."""
        return len(self._states())

    def copy_leaf(self, source: int, target: int, param_map: dict) -> None:
        """Give sub-supernet ``target`` a copy of every optimizer state (every MS cluster) of ``source``.

        ``param_map`` maps each parameter of ``source``'s model to the same parameter of
        ``target``'s; tensors are cloned so the two leaves never share a buffer. Used when a
        GM-NAS split hands the parent's training state to a child in a fresh slot.
        """
        store = self._states()
        for key in [k for k in store if _leaf_of(k) == source]:
            copied: defaultdict = defaultdict(dict)
            for p, s in store[key].items():
                if id(p) in param_map:
                    copied[param_map[id(p)]] = {n: (v.detach().clone() if torch.is_tensor(v) else v)
                                                for n, v in s.items()}
            store[_with_leaf(key, target)] = copied

    def clear_leaf(self, leaf: int) -> None:
        """Drop every optimizer state of sub-supernet ``leaf`` (a restarted leaf starts with none)."""
        store = self._states()
        for key in [k for k in store if _leaf_of(k) == leaf]:
            del store[key]

    def state_dict(self, params: Sequence[torch.nn.Parameter]) -> dict:
        """All states keyed by parameter *index* (tensor keys do not survive a reload)."""
        index = {id(p): i for i, p in enumerate(params)}
        out = []
        for key, state in self._states().items():
            out.append({"key": _plain_key(key),
                        "state": {index[id(p)]: dict(s) for p, s in state.items() if id(p) in index}})
        return {"states": out}

    def load_state_dict(self, state: dict, params: Sequence[torch.nn.Parameter]) -> None:
        """Rebuild the parameter-keyed states saved by :meth:`state_dict`."""
        store = self._states()
        store.clear()
        for entry in state["states"]:
            restored: defaultdict = defaultdict(dict)
            for i, s in entry["state"].items():
                restored[params[int(i)]] = dict(s)
            store[_unplain_key(entry["key"])] = restored


class SharedState(OptimizerStatePolicy):
    """One optimizer state per sub-supernet (one in total without a partition): plain SGD momentum."""


class SeparatedState(OptimizerStatePolicy):
    """Momentum separation: one state per (sub-supernet, cluster).

    Parameters
    ----------
    labels
        Clustering labels. With one label of ``K`` choices there are ``K`` clusters; with
        ``n`` labels up to ``K^n`` (the paper's 5 / 25 / 125 ablation).
    """

    def __init__(self, labels: Sequence[str]) -> None:
        if not labels:
            raise ValueError("SeparatedState needs at least one clustering label")
        self.labels = list(labels)

    def key(self, arch: dict, leaf: int = 0) -> Hashable:
        """(leaf, choices on the clustering labels): the cluster of arch in sub-supernet leaf."""
        return (leaf, *(arch[label] for label in self.labels))


def default_cluster_labels(labels: Sequence[str], shared_labels: set[str], seed: int, count: int = 1,
                           exclude: Optional[Sequence[str]] = None) -> list[str]:
    """Choose the MS clustering labels the way the CaLR paper does.

    Chain spaces (no label shared by several modules) cluster on the first searchable
    layer(s); cell spaces such as NAS-Bench-201 (labels shared by every cell) cluster on
    seeded random label(s). Labels in ``exclude`` (a few-shot split label) are skipped,
    since clustering on the split label would put a whole sub-supernet in one cluster.
    """
    candidates = [label for label in labels if label not in set(exclude or ())]
    if not candidates:
        raise ValueError("no label left to cluster on")
    count = min(count, len(candidates))
    if any(label in shared_labels for label in candidates):
        rng = np.random.RandomState(seed)
        picked = rng.choice(len(candidates), size=count, replace=False)
        return [candidates[i] for i in sorted(picked)]
    return candidates[:count]


def _leaf_of(key: Hashable) -> Any:
    """The sub-supernet of a state key: the key itself (shared) or its first element (separated)."""
    return key[0] if isinstance(key, tuple) else key


def _with_leaf(key: Hashable, leaf: int) -> Hashable:
    return (leaf, *key[1:]) if isinstance(key, tuple) else leaf


def _plain_key(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _unplain_key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


# ---------------------------------------------------------------------------------------------- registration
@OPTIMIZER_STATES.register("shared")
def build_shared(options: None, context: EngineContext) -> SharedState:
    """One momentum for every subnet (per sub-supernet with a partition)."""
    return SharedState()


@dataclass(frozen=True)
class SeparatedOptions:
    """Options of MS: the clustering labels (null: the paper's choice) and how many the paper's choice takes."""

    ms_labels: Optional[list] = None
    ms_num_labels: int = 1

    def __post_init__(self) -> None:
        if self.ms_num_labels <= 0:
            raise ConfigError("training.ms_num_labels", self.ms_num_labels, "must be a positive integer")


def cluster_labels_for(options: Any, space: dict[str, list], shared: set[str], partition: Partition, *,
                       seed: int) -> list[str]:
    """The MS clustering labels: the user's ``ms_labels`` or the paper's default choice.

    Parameters
    ----------
    options
        :class:`SeparatedOptions`, or the recipe's ``training`` section (it has the same fields).
    space
        ``{label: [choices]}`` of the supernet.
    shared
        Labels carried by more than one supernet module.
    partition
        The partition; its split labels are never clustering labels.
    seed
        The recipe's seed.

    Returns
    -------
    list[str]
    """
    excluded = list(split_labels_of(partition))
    if options.ms_labels:
        for label in options.ms_labels:
            if label not in space:
                raise ConfigError("training.ms_labels", label, f"not a label of the space; labels: {', '.join(space)}")
            if label in excluded:
                raise ConfigError("training.ms_labels", label,
                                  "is the few-shot split label: every subnet of a sub-supernet would share one "
                                  "cluster; pick another label")
        return list(options.ms_labels)
    # A label with one value (MobileNetV3Space's fixed width multiplier) would put every subnet in one cluster.
    fixed = [label for label, values in space.items() if len(values) < 2]
    if len(fixed) < len(space):
        excluded += [label for label in fixed if label not in excluded]
    return default_cluster_labels(list(space), shared, seed=seed, count=options.ms_num_labels, exclude=excluded)


def _check_separated_space(options: SeparatedOptions, training: "TrainingConfig", model: nn.Module,
                           space: dict) -> None:
    if not options.ms_labels and training.partition == "exhaustive" and len(space) < 2:
        raise ConfigError("training.optimizer_state", "separated", f"MS clusters on a label other than "
                          f"the few-shot split label, and this space has only {', '.join(space) or 'no label'}")
    for label in options.ms_labels or []:
        if label not in space:
            raise ConfigError("training.ms_labels", label, f"not a label of the space; labels: {', '.join(space)}")


@OPTIMIZER_STATES.register("separated", options=SeparatedOptions, check_space=_check_separated_space)
def build_separated(options: SeparatedOptions, context: EngineContext) -> SeparatedState:
    """MS: one momentum per cluster of subnets (their choices on the clustering labels)."""
    labels = cluster_labels_for(options, context.space, context.shared, context.partition, seed=context.seed)
    return SeparatedState(labels)
