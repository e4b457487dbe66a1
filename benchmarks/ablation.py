"""The gain of each step optimisation: our spos with one optimisation undone, against NNI's RandomOneShot.

Same protocol as :mod:`benchmarks.nni_spos` (Lightning fits, NNI's recorded paths replayed,
CPU time, interleaved repeats); every variant of our module is timed in the same round as
the NNI reference, so ``variant steps/s / NNI steps/s`` of the variants can be compared
with each other. Undone, one at a time:

* ``train() per step``: ``Module.train()`` on every model each step (was in ``train_step``);
* ``self.log per step``: Lightning's ``self.log`` twice per step (was in ``training_step``);
* ``single-tensor SGD``: ``foreach=False`` (torch's CPU default);
* ``optimizer.zero_grad``: ``optimizer.zero_grad(set_to_none=True)`` instead of nulling grads directly;
* ``per-tensor gradient check``: the gradient check and clipping from ``torch._foreach_norm``'s
  per-tensor norms on every step, instead of the CPU flat check (one flattened copy; clipping
  skipped when its coefficient is exactly 1);
* ``Lightning dispatch``: ``manual_backward`` and ``LightningOptimizer.step`` (strategy, precision
  plugin, closure and hook walks) instead of the direct torch calls they reduce to on one device at
  full precision with no gradient hooks;
* ``resample per module``: NNI's ``resample(memo)`` on every path-sampling module to set a path,
  instead of storing the choice directly;
* ``all undone``: all of them together (the step before this work).
"""
from __future__ import annotations

import statistics
from typing import Any, Callable

import torch

from nni_dynamic_supernet.nni_bridge import plumbing
from nni_dynamic_supernet.supernet import supernet_modules

from .common import batches, make_run
from .nni_spos import _fit, _nni_module
from .pada import _Replay


def _old_training_step(module: Any) -> Callable:
    def training_step(batch: Any, batch_idx: int) -> torch.Tensor:
        loss = module.engine.train_step(batch, module.batches_done)
        module.batches_done += 1
        module.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch[1]))
        module.log("lr", float(module.engine.last_lr), prog_bar=True, on_step=False, on_epoch=True)
        return loss
    return training_step


def _undo(engine: Any, what: set) -> None:
    if "train" in what:
        engine._ensure_train_mode = lambda: [model.train() for model in engine.models]
    if "sgd" in what:
        for group in engine.optimizer.param_groups:
            group["foreach"] = False
    if "zero_grad" in what:
        engine.zero_grad = lambda: engine.optimizer.zero_grad(set_to_none=True)
    if "norms" in what:
        engine._flat_check = lambda: None
    if "resample" in what:
        engine.set_arch_fns = [_resample_setter(model) for model in engine.models]


def _resample_setter(model: Any) -> Callable[[dict], None]:
    modules = supernet_modules(model)

    def set_arch(arch: dict) -> None:
        memo = dict(arch)
        for module in modules:
            memo.update(module.resample(memo=memo))
    return set_arch


def _fit_variant(module: Any, data: list, warmup: int, what: set, ready: Callable[[Any], None]) -> float:
    if "dispatch" not in what:
        return _fit(module, data, warmup, on_engine_built=ready)
    direct = plumbing.direct_backward_and_step
    plumbing.direct_backward_and_step = lambda trainer, module: False
    try:
        return _fit(module, data, warmup, on_engine_built=ready)
    finally:
        plumbing.direct_backward_and_step = direct


VARIANTS = {"current": set(), "train() per step": {"train"}, "self.log per step": {"log"},
            "single-tensor SGD": {"sgd"}, "optimizer.zero_grad": {"zero_grad"},
            "per-tensor gradient check": {"norms"}, "Lightning dispatch": {"dispatch"},
            "resample per module": {"resample"},
            "all undone": {"train", "log", "sgd", "zero_grad", "norms", "dispatch", "resample"}}


def gains(repeats: int = 5, steps: int = 16, warmup: int = 4) -> dict:
    """Per variant, steps/s relative to NNI's RandomOneShot in the same round (median, spread)."""
    torch.set_num_threads(1)
    nni_run = make_run("spos")
    nni = _nni_module(nni_run)
    modules = {}
    for name, what in VARIANTS.items():
        module = make_run("spos").module
        if "log" in what:
            module.training_step = _old_training_step(module)
        modules[name] = module
    labels = list(nni_run.search_space)
    data = [(batch[0], batch[1]) for batch in batches(nni_run, steps + warmup)]
    per_round: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(repeats + 1):  # round 0 warms up
        nni.recorded = []
        nni_s = _fit(nni, data, warmup)
        archs = [{label: sample[label] for label in labels} for sample in nni.recorded]
        for name, module in modules.items():
            def ready(engine: Any, archs: list = archs, what: set = VARIANTS[name]) -> None:
                engine.path_sampler = _Replay(engine.path_sampler, list(archs))
                _undo(engine, what)
            ours_s = _fit_variant(module, data, warmup, VARIANTS[name], ready)
            if r:
                per_round[name].append(nni_s / ours_s)
    out = {}
    for name, values in per_round.items():
        out[f"ablation: spos ({name}) / NNI steps per second"] = {
            "median": statistics.median(values), "min": min(values), "max": max(values)}
    return out
