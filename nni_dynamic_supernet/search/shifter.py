"""The supernet shifter: fine-tuning the supernet on the candidates a search samples (Supernet Shifting).

:class:`SupernetShifter` owns the fine-tuning: its own SGD optimizer (lr 1e-4, momentum 0.9,
weight decay 4e-5, none on 1-D tensors, :func:`shifting_optimizer`), its own seeded batch
stream, ``iters`` batches per candidate, and one of two update modes: ``per_generation`` (the
paper: accumulate every candidate's gradient, step once per generation) or ``per_candidate``
(the official code: step after every batch). :class:`~.shifting.ShiftedEvolution` drives it.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from ..errors import ConfigError
from ..recipe import SearchConfig
from ..training.grad_checks import null_zero_grads
from ..training.transfer import head_parameters
from .evaluate import SubnetEvaluator, restore_bn, snapshot_bn

__all__ = ["SupernetShifter", "shifting_optimizer", "build_shifter"]


def shifting_optimizer(params: Sequence[nn.Parameter], lr: float, momentum: float, weight_decay: float,
                       head: Sequence[nn.Parameter] = (), head_lr: Optional[float] = None) -> torch.optim.SGD:
    """SGD with weight decay on matrices/kernels only, as the official shifting code (no decay on BN, biases).

    ``head`` (a transferred classifier) may get its own LR ``head_lr``.
    """
    head_ids = {id(p) for p in head}
    groups: list[dict] = []
    for is_head in (False, True):
        chosen = [p for p in params if p.requires_grad and (id(p) in head_ids) == is_head]
        group_lr = head_lr if is_head and head_lr is not None else lr
        decay = [p for p in chosen if p.ndim > 1]
        no_decay = [p for p in chosen if p.ndim <= 1]
        if decay:
            groups.append({"params": decay, "weight_decay": weight_decay, "lr": group_lr})
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0, "lr": group_lr})
    if not groups:
        raise ConfigError("search.freeze_features", True, "leaves no trainable parameter for shifting")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


class _BatchStream:
    """An endless stream of random training batches from its own seeded generator (reshuffled per pass)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device | str) -> None:
        if len(dataset) < batch_size:  # type: ignore[arg-type]
            size = len(dataset)  # type: ignore[arg-type]
            raise ConfigError("search.shift_batch_size", batch_size,
                              f"larger than the training split ({size} examples); lower it")
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(int(seed))
        self.device = device
        self._order: list[int] = []

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self._order) < self.batch_size:
            self._order = torch.randperm(len(self.dataset), generator=self.generator).tolist()  # type: ignore[arg-type]
        picks, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        batch = default_collate([self.dataset[i] for i in picks])
        return batch[0].to(self.device), batch[1].to(self.device)


class SupernetShifter:
    """Fine-tunes the supernet on architectures chosen by a searcher.

    Parameters
    ----------
    models, set_arch, route
        The supernet of each partition leaf, the function forcing an architecture on a
        leaf, and ``arch -> leaf`` (as in :class:`~.evaluate.SubnetEvaluator`).
    train_set
        Training examples ``(x, y, ...)``; batches are drawn from it at random.
    lr, momentum, weight_decay
        The shifting SGD (paper and code: 1e-4, 0.9, 4e-5).
    iters, batch_size
        Batches per candidate and their size (paper: 640 samples; code: 20 x 150).
    update
        ``'per_generation'`` (accumulate, one step in :meth:`end_generation`) or
        ``'per_candidate'`` (a step after every batch).
    label_smoothing
        Of the cross-entropy loss (code: 0.1).
    seed
        Seed of the batch stream (independent of the searcher's RNG).
    head, head_lr
        A transferred classifier and its LR (default: ``lr``).
    bn_from_shift
        The candidate's shifting passes are its BN recalibration (see the module docstring):
        :class:`ShiftedEvolution` arms :meth:`calibrate`, installed as the evaluator's calibrator.
    """

    def __init__(self, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 route: Callable[[dict], int], train_set: Dataset, lr: float = 1e-4, momentum: float = 0.9,
                 weight_decay: float = 4e-5, iters: int = 20, batch_size: int = 32, update: str = "per_generation",
                 label_smoothing: float = 0.1, seed: int = 0, device: torch.device | str = "cpu",
                 head: Sequence[nn.Parameter] = (), head_lr: Optional[float] = None,
                 bn_from_shift: bool = False) -> None:
        if update not in ("per_generation", "per_candidate"):
            raise ConfigError("search.shift_update", update, "allowed values: per_generation, per_candidate")
        if iters <= 0:
            raise ConfigError("search.shift_iters", iters, "must be a positive integer")
        self.models = list(models)
        self.set_arch = list(set_arch)
        self.route = route
        self.iters = iters
        self.update = update
        self.label_smoothing = label_smoothing
        self.stream = _BatchStream(train_set, batch_size, seed, device)
        # Parameters shared by several leaves (none today) must appear once in the optimizer.
        unique: dict[int, nn.Parameter] = {}
        for model in self.models:
            for p in model.parameters():
                unique.setdefault(id(p), p)
        self.params = [p for p in unique.values() if p.requires_grad]
        self.optimizer = shifting_optimizer(self.params, lr, momentum, weight_decay, head, head_lr)
        self.can_move = any(g["lr"] > 0 for g in self.optimizer.param_groups)
        self._bns = [[m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
                     for model in self.models]
        #: Bumped by every optimizer step that can change the weights (scores taken before are stale).
        self.version = 0
        self.steps = 0
        self.candidates = 0
        self.seconds = 0.0
        self.losses: list[float] = []
        self._pending = False
        self.bn_from_shift = bool(bn_from_shift)
        self._armed = False

    def arm(self) -> None:
        """Let the next :meth:`calibrate` call shift the candidate being scored (once)."""
        self._armed = True

    def disarm(self) -> bool:
        """Cancel an unused :meth:`arm`; returns whether it was still armed (the evaluator did not calibrate)."""
        armed, self._armed = self._armed, False
        return armed

    def calibrate(self, leaf: int, arch: dict) -> bool:
        """The evaluator's calibrator: when armed, the candidate's shifting passes recalibrate its BN.

        Returns ``False`` when not armed (tracked architectures, the final re-scoring): the
        evaluator then recalibrates on its own batches and nothing is shifted.
        """
        if not self._armed:
            return False
        self._armed = False
        with torch.enable_grad():
            self.train_candidate(arch, keep_bn=True)
        return True

    def train_candidate(self, arch: dict, keep_bn: bool = False) -> float:
        """Take the candidate's loss on ``iters`` fresh batches; step now or accumulate. Returns the mean loss.

        ``keep_bn``: leave the train-mode BN statistics in place (the evaluator recalibrates
        through these passes and restores BN itself); otherwise they are put back.
        """
        started = time.perf_counter()
        leaf = self.route(arch)
        model = self.models[leaf]
        was_training = model.training
        self.set_arch[leaf](arch)
        # Unless these passes are the evaluator's recalibration, shifting must not leak its
        # train-mode running averages into later scores, so they are put back afterwards.
        saved = None if keep_bn else snapshot_bn(self._bns[leaf])
        model.train()
        total = 0.0
        try:
            for _ in range(self.iters):
                x, y = self.stream.next()
                loss = F.cross_entropy(model(x), y, label_smoothing=self.label_smoothing)
                loss.backward()
                self._pending = True
                total += float(loss.detach())
                if self.update == "per_candidate":
                    self.step()
        finally:
            if saved is not None:
                restore_bn(self._bns[leaf], saved)
            model.train(was_training)
        self.candidates += 1
        self.losses.append(total / self.iters)
        self.seconds += time.perf_counter() - started
        return total / self.iters

    def end_generation(self) -> None:
        """The per-generation update of the paper: one step with the accumulated gradient."""
        if self.update == "per_generation" and self._pending:
            started = time.perf_counter()
            self.step()
            self.seconds += time.perf_counter() - started

    def step(self) -> None:
        """One optimizer step on the gradients gathered so far, then clear them (``None``, not zero)."""
        # An op whose output is multiplied away (an NB201 edge feeding only `none`) gets an exact-zero
        # gradient: drop it so momentum and weight decay leave that op alone, as they leave unused ones.
        null_zero_grads(self.params)
        if any(p.grad is not None for p in self.params):
            self.optimizer.step()
            self.steps += 1
            if self.can_move:
                self.version += 1
        self.optimizer.zero_grad(set_to_none=True)
        self._pending = False

    def summary(self) -> dict:
        """What the shifting did, for results.json."""
        return {"steps": self.steps, "candidates_trained": self.candidates, "seconds": self.seconds,
                "iters_per_candidate": self.iters, "batch_size": self.stream.batch_size, "update": self.update,
                "bn": "shift" if self.bn_from_shift else "recalibrate",
                "lr": [g["lr"] for g in self.optimizer.param_groups],
                "mean_loss": float(np.mean(self.losses)) if self.losses else None}


def build_shifter(search: SearchConfig, evaluator: SubnetEvaluator, train_set: Any,
                  device: torch.device | str = "cpu", *, seed: int) -> SupernetShifter:
    """The :class:`SupernetShifter` of ``search`` on the evaluator's supernets (a transferred head gets its own LR).

    Parameters
    ----------
    search
        The recipe's ``search`` section (the ``shift_*`` fields).
    evaluator
        The evaluator over the supernet copies that will move.
    train_set
        The training split the shifting batches are drawn from.
    device
        Where the batches go.
    seed
        The recipe's seed (the batch stream draws from ``seed + 7``).

    Returns
    -------
    SupernetShifter
    """
    head = [p for m in evaluator.models for p in head_parameters(m)] if search.transfer_to is not None else []
    return SupernetShifter(evaluator.models, evaluator.set_arch, evaluator.route, train_set, lr=search.shift_lr,
                           momentum=search.shift_momentum, weight_decay=search.shift_weight_decay,
                           iters=search.shift_iters, batch_size=search.shift_batch_size, update=search.shift_update,
                           label_smoothing=search.shift_label_smoothing, seed=seed + 7, device=device,
                           bn_from_shift=search.shift_bn == "shift",
                           head=head, head_lr=search.transfer_head_lr)
