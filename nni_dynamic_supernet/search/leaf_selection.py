"""Choosing the final architecture across sub-supernets (few-shot NAS, GM-NAS).

With several sub-supernets, the searched architectures come from different weight copies,
whose accuracies need not be comparable. ``search.leaf_selection`` says how to choose:

* ``best_arch``: the best searched architecture over all leaves, i.e. the best architecture
  of each leaf, then the best of those (GM-NAS on NAS-Bench-201);
* ``val_loss``: the leaf with the lowest mean validation loss over random architectures of
  the leaf, then its best searched architecture (few-shot NAS, GM-NAS on MobileNet);
* ``successive_halving``: the best architecture of each leaf, ranked by short stand-alone
  training runs whose budget doubles every round while the worse half is dropped (GM-NAS on
  the DARTS space, ``successive_halving.py``: 8 -> 4 -> 2 candidates).
"""
from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..arch import random_arch

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import SearchConfig

__all__ = ["best_per_leaf", "select_by_val_loss", "successive_halving", "standalone_accuracy", "select_across_leaves"]


def best_per_leaf(history: Sequence[dict], route: Callable[[dict], int]) -> dict[int, dict]:
    """Leaf -> its best evaluated record (by accuracy; ties: first evaluated)."""
    best: dict[int, dict] = {}
    for record in history:
        leaf = route(record["arch"])
        if leaf not in best or record["accuracy"] > best[leaf]["accuracy"]:
            best[leaf] = record
    return best


def select_by_val_loss(leaves: Sequence[dict], score: Callable[[dict], dict], archs_per_leaf: int,
                       seed: int) -> tuple[int, list[float]]:
    """The leaf whose random architectures have the lowest mean validation loss, and every leaf's mean loss."""
    rng = np.random.RandomState(seed)
    losses = []
    for mask in leaves:
        archs = [random_arch(mask, rng) for _ in range(archs_per_leaf)]
        losses.append(float(np.mean([score(a)["loss"] for a in archs])))
    return int(np.argmin(losses)), losses


def successive_halving(candidates: Sequence[dict], train_fn: Callable[[dict, int], float],
                       first_epochs: int = 1) -> tuple[list[dict], list[dict]]:
    """Rank ``candidates`` by successive halving on stand-alone training.

    Parameters
    ----------
    candidates
        Architectures (one per leaf).
    train_fn
        ``train_fn(arch, epochs)`` trains ``arch`` from scratch for ``epochs`` and returns its
        validation accuracy.
    first_epochs
        Budget of the first round; doubled every round.

    Returns
    -------
    tuple
        The candidates best first (the survivor, then by the round they were dropped in and
        their score there) and the rounds as plain data (``epochs``, ``scores``).
    """
    alive = list(range(len(candidates)))
    dropped: list[tuple[int, float, int]] = []  # (round, score, index)
    rounds = []
    epochs = max(1, int(first_epochs))
    r = 0
    while len(alive) > 1:
        scores = {i: float(train_fn(candidates[i], epochs)) for i in alive}
        rounds.append({"epochs": epochs, "scores": [{"arch": candidates[i], "accuracy": scores[i]} for i in alive]})
        keep = sorted(alive, key=lambda i: -scores[i])[: math.ceil(len(alive) / 2)]
        dropped.extend((r, scores[i], i) for i in alive if i not in keep)
        alive = keep
        epochs *= 2
        r += 1
    order = alive + [i for _, _, i in sorted(dropped, key=lambda t: (-t[0], -t[1]))]
    return [candidates[i] for i in order], rounds


def standalone_accuracy(space: nn.Module, arch: dict, train_batches: Iterable, val_batches: Sequence,
                        epochs: int, lr: float, momentum: float, weight_decay: float, seed: int) -> float:
    """Validation accuracy (%) of ``arch`` trained alone from scratch for ``epochs`` passes over ``train_batches``.

    The model is ``copy.deepcopy(space.freeze(arch))`` (``freeze`` shares op modules with the
    space) re-initialised from ``seed``; SGD with a cosine LR, as the embedded benchmark's
    stand-alone protocol.
    """
    model = copy.deepcopy(space.freeze(arch))
    torch.manual_seed(seed)
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    device = next(model.parameters()).device
    batches = [(x.to(device), y.to(device)) for x, y in train_batches]
    total = max(1, epochs * len(batches))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=momentum > 0,
                                weight_decay=weight_decay)
    model.train()
    step = 0
    for _ in range(epochs):
        for x, y in batches:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            step += 1
    model.eval()
    correct = count = 0
    with torch.no_grad():
        for x, y in val_batches:
            x, y = x.to(device), y.to(device)
            correct += int((model(x).argmax(1) == y).sum())
            count += len(y)
    return 100.0 * correct / max(1, count)


def select_across_leaves(search: "SearchConfig", partition: Any, history: Sequence[dict],
                         score: Callable[[dict], dict], train_fn: Optional[Callable[[dict, int], float]], *,
                         seed: int) -> tuple[list[dict], dict]:
    """``search.leaf_selection`` applied to a finished search: (top records, diagnostics)."""
    ranked = sorted(history, key=lambda r: -r["accuracy"])
    per_leaf = best_per_leaf(history, partition.route)
    info: dict = {"rule": search.leaf_selection,
                  "best_per_leaf": {str(leaf): {"arch": r["arch"], "accuracy": r["accuracy"]}
                                    for leaf, r in sorted(per_leaf.items())}}
    if search.leaf_selection == "val_loss":
        leaf, losses = select_by_val_loss(partition.leaves, score, search.leaf_probe_archs, seed + 5)
        info.update(chosen_leaf=leaf, leaf_losses=losses)
        mine = [r for r in ranked if partition.route(r["arch"]) == leaf]
        return (mine or ranked)[: search.top_k], info
    if search.leaf_selection == "successive_halving":
        if train_fn is None:
            raise ValueError("successive halving needs a stand-alone training function")
        order, rounds = successive_halving([r["arch"] for r in per_leaf.values()], train_fn, search.halving_epochs)
        info.update(rounds=rounds, chosen_leaf=partition.route(order[0]))
        by_key = {tuple(sorted(r["arch"].items())): r for r in per_leaf.values()}
        first = [by_key[tuple(sorted(a.items()))] for a in order]
        rest = [r for r in ranked if all(r is not f for f in first)]
        return (first + rest)[: search.top_k], info
    return ranked[: search.top_k], info
