"""Subnet evaluation with inherited weights: BN recalibration, then validation.

Why recalibrate: during supernet training every BatchNorm layer accumulates running
statistics over *all* sampled subnets, so for any one subnet they are wrong (the
features feeding a BN differ with the ops before it). SPOS and SUMNAS therefore reset
the statistics and re-estimate them on training batches for each subnet before
validating. The policy is explicit (``recalibrate`` N batches, or ``inherit`` the
trained statistics) and recorded in results.

Only the BN layers on the evaluated path are reset, recalibrated, snapshotted and
restored: a BN inside an unchosen candidate op never runs in the subnet's forward, so
touching it changed nothing but cost time that grew with the number of candidates.
Validation accumulates its loss and hit counts on the device and reads them once per
subnet (one host-device sync instead of two per batch).

Evaluation never changes the supernet: BN buffers and momenta are snapshotted and
restored, and no gradient is taken (in NNI 3.0 ``freeze`` shares op modules with
the supernet, so we evaluate in place instead of on a frozen copy).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..recipe import SearchConfig

__all__ = ["SubnetEvaluator", "build_evaluator", "evaluator_over", "take_batches", "snapshot_bn", "restore_bn"]


def snapshot_bn(bns: Sequence[nn.modules.batchnorm._BatchNorm]) -> list:
    """Copies of the running statistics, batch counters and momenta of ``bns`` (for :func:`restore_bn`)."""
    return [(bn.running_mean.clone() if bn.running_mean is not None else None,
             bn.running_var.clone() if bn.running_var is not None else None,
             bn.num_batches_tracked.clone() if bn.num_batches_tracked is not None else None,
             bn.momentum) for bn in bns]


def restore_bn(bns: Sequence[nn.modules.batchnorm._BatchNorm], saved: list) -> None:
    """Put back what :func:`snapshot_bn` copied, in place."""
    with torch.no_grad():
        for bn, (mean, var, count, momentum) in zip(bns, saved):
            if mean is not None:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
            if count is not None:
                bn.num_batches_tracked.copy_(count)
            bn.momentum = momentum


def take_batches(loader: Iterable, n: int, device: torch.device | str = "cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` ``(x, y)`` batches of ``loader``, on ``device`` (a fixed calibration set)."""
    out = []
    for batch in loader:
        out.append((batch[0].to(device), batch[1].to(device)))
        if len(out) >= n:
            break
    return out


class SubnetEvaluator:
    """Predicts a subnet's accuracy from the supernet's weights.

    Parameters
    ----------
    models
        The supernet of each partition leaf.
    set_arch
        ``set_arch[leaf](arch)`` forces ``arch`` on leaf ``leaf``.
    route
        ``arch -> leaf`` (which sub-supernet owns the architecture).
    val_batches
        Validation ``(x, y)`` batches (a fixed, unshuffled set).
    calib_batches
        Training batches for BN recalibration (ignored with ``bn_mode='inherit'``).
    bn_mode
        ``'recalibrate'`` or ``'inherit'``.

    Attributes
    ----------
    calibrator
        Optional ``calibrator(leaf, arch) -> bool`` that runs the recalibration forward passes
        itself after the statistics are reset (supernet shifting's train-mode steps, as in the
        official tester); when it returns ``False`` the calibration batches are used.
    """

    def __init__(self, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 route: Callable[[dict], int], val_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 calib_batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = (), bn_mode: str = "recalibrate") -> None:
        if bn_mode not in ("recalibrate", "inherit"):
            raise ConfigError("search.bn_mode", bn_mode, "allowed values: recalibrate, inherit")
        if bn_mode == "recalibrate" and not calib_batches:
            raise ConfigError("search.bn_batches", 0, "BN recalibration needs at least one training batch")
        if not val_batches:
            raise ConfigError("data", "validation split", "is empty; a subnet cannot be evaluated without data")
        self.models = list(models)
        self.set_arch = list(set_arch)
        self.route = route
        self.val_batches = list(val_batches)
        self.calib_batches = list(calib_batches)
        self.bn_mode = bn_mode
        self._bns = [_bn_layers_with_conditions(model) for model in self.models]
        self.evaluations = 0
        self.calibrator: Optional[Callable[[int, dict], bool]] = None
        #: Evaluations whose BN statistics came from the calibrator (shifting passes).
        self.calibrated_by_hook = 0

    @property
    def policy(self) -> dict:
        """The BN policy as recorded in results.json."""
        out = {"bn_mode": self.bn_mode, "bn_batches": len(self.calib_batches) if self.bn_mode == "recalibrate" else 0,
               "val_examples": sum(len(y) for _, y in self.val_batches)}
        if self.calibrator is not None:
            out["calibrated_by_shifting"] = self.calibrated_by_hook
        return out

    @torch.no_grad()
    def evaluate(self, arch: dict) -> dict:
        """Accuracy (percent) and mean loss of ``arch`` on the validation batches."""
        leaf = self.route(arch)
        model = self.models[leaf]
        was_training = model.training
        self.set_arch[leaf](arch)
        bns = self.active_bn_layers(leaf, arch) if self.bn_mode == "recalibrate" else []
        saved = snapshot_bn(bns) if self.bn_mode == "recalibrate" else None
        try:
            if saved is not None:
                self._recalibrate(bns, model, leaf, arch)
            model.eval()
            count = 0
            # Float64 sums of the per-batch float32 sums: the same IEEE additions as Python floats,
            # so the results are bit-identical to reading each batch back, without the syncs.
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.val_batches[0][1].device)
            correct = torch.zeros((), dtype=torch.int64, device=loss_sum.device)
            for x, y in self.val_batches:
                logits = model(x)
                loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
                count += len(y)
        finally:
            if saved is not None:
                restore_bn(bns, saved)
            model.train(was_training)
        self.evaluations += 1
        return {"accuracy": 100.0 * int(correct) / count, "loss": float(loss_sum) / count}

    def active_bn_layers(self, leaf: int, arch: dict) -> list[nn.modules.batchnorm._BatchNorm]:
        """The BN layers of sub-supernet ``leaf`` that run in ``arch``'s forward pass.

        A BN is on the path when every layer choice above it selects the candidate that
        contains it; a label missing from ``arch`` counts as selected (kept, to be safe).
        """
        return [bn for bn, conditions in self._bns[leaf]
                if all(arch.get(label, choice) == choice for label, choice in conditions)]

    def _recalibrate(self, bns: list, model: nn.Module, leaf: int, arch: dict) -> None:
        for bn in bns:
            if bn.track_running_stats:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average: independent of batch order
        model.train()
        if self.calibrator is not None and self.calibrator(leaf, arch):
            self.calibrated_by_hook += 1
            return
        for x, _ in self.calib_batches:
            model(x)


def _bn_layers_with_conditions(model: nn.Module) -> list[tuple[nn.modules.batchnorm._BatchNorm, tuple]]:
    """Every BN layer of ``model`` with the ``(label, choice)`` selections it needs to run.

    Walks the module tree once; a candidate ``name`` of a layer choice (an NNI supernet
    module with ``label`` and ``names``) adds ``(label, name)`` to everything below it.
    """
    out: list = []

    def walk(module: nn.Module, conditions: tuple) -> None:
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            out.append((module, conditions))
        names = getattr(module, "names", None)
        label = getattr(module, "label", None)
        candidates = {}
        if names is not None and isinstance(label, str):
            candidates = {id(module[name]): (label, name) for name in names}
        for child in module.children():
            extra = candidates.get(id(child))
            walk(child, conditions + (extra,) if extra is not None else conditions)

    walk(model, ())
    return out


def build_evaluator(search: SearchConfig, models: Sequence[nn.Module], partition: Any, calib_loader: Iterable,
                    val_loader: Iterable, device: torch.device | str = "cpu") -> SubnetEvaluator:
    """A :class:`SubnetEvaluator` with the ``search.bn_mode`` policy on fixed calibration and validation batches.

    Parameters
    ----------
    search
        The recipe's ``search`` section (``bn_mode``, ``bn_batches``).
    models
        The supernet of every partition leaf.
    partition
        Routes an architecture to its leaf.
    calib_loader, val_loader
        Where the fixed calibration and validation batches are taken from.
    device
        Where the batches are kept and evaluation runs.

    Returns
    -------
    SubnetEvaluator
    """
    calib = take_batches(calib_loader, search.bn_batches, device) if search.bn_mode == "recalibrate" else []
    val = take_batches(val_loader, 10 ** 9, device)
    return SubnetEvaluator(models, _arch_setters(models), partition.route, val, calib, search.bn_mode)


def evaluator_over(models: Sequence[nn.Module], like: SubnetEvaluator) -> SubnetEvaluator:
    """An evaluator over other copies of ``like``'s supernets, with its fixed batches, routing and BN policy.

    Parameters
    ----------
    models
        Copies of the supernets ``like`` evaluates (one per partition leaf).
    like
        The evaluator whose batches are reused.

    Returns
    -------
    SubnetEvaluator
    """
    return SubnetEvaluator(models, _arch_setters(models), like.route, like.val_batches, like.calib_batches,
                           like.bn_mode)


def _arch_setters(models: Sequence[nn.Module]) -> list[Callable[[dict], None]]:
    # NNI's one-shot modules (and Lightning) load when a supernet is evaluated, not when searchers register.
    from ..supernet.modules import arch_setter
    return [arch_setter(m) for m in models]
