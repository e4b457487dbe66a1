"""Our spos against NNI's own SPOS (``RandomOneShot``): training steps per second, both through Lightning.

What each side does per step
----------------------------
* **NNI** (``RandomSamplingLightningModule`` around NNI's ``ClassificationModule``, i.e.
  what ``RandomOneShot`` + ``Classification`` run): walk the module tree for supernet
  modules and resample each, log ``sampling_attempt``, forward, cross-entropy, log
  ``train_loss`` and the torchmetrics ``train_acc`` (on step), then Lightning's
  automatic optimization (zero_grad, backward, ``optimizer.step``). No LR schedule.
* **ours** (``SupernetModule`` + ``SupernetEngine``, recipe ``spos``): draw a path, set it
  on the cached list of supernet modules, forward, cross-entropy, backward, one host sync
  that nulls all-zero gradients and checks finiteness, gradient clipping (norm 5), the
  cosine LR written into the param group, ``optimizer.step``; log ``train_loss`` and
  ``lr`` per epoch.

Both sides use the same mutated NAS-Bench-201 supernet class (built twice from the same
seed), the same SGD (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4), one thread,
the same fixed list of ``(x, y)`` batches (no loader work on either side), and the *same
paths*: NNI samples freely and records what it drew; our side pays for its own sampler's
draw and then trains NNI's recorded paths (step time depends strongly on the ops of a
path, so different path mixes would swamp the overheads being compared). Each repeat is
one ``Trainer.fit`` per side, interleaved; the first ``warmup`` steps of every fit are
excluded from the timing.

The floor: a third side, **raw**, is the least any SPOS implementation must do, a plain
PyTorch loop (no Lightning) of set path, forward, cross-entropy, ``zero_grad``, backward
and the same SGD step on the same paths and batches. ``raw / NNI`` is the best ratio an
implementation with zero overhead could reach on this machine and model.
"""
from __future__ import annotations

import statistics
from typing import Any, Callable, Optional

import pytorch_lightning as pl
import torch

from nni_dynamic_supernet.nni_bridge import SupernetCallback

from .common import CLOCK, batches, make_run
from .pada import _Replay

_TRAINER_FLAGS = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                      accelerator="cpu", devices=1, use_distributed_sampler=False)


class _StepClock(pl.Callback):
    """CPU time (:data:`~benchmarks.common.CLOCK`) from the start of batch ``warmup`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start = CLOCK()

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.end = CLOCK()


def _nni_module(run: Any) -> Any:
    """NNI's RandomOneShot engine over ``run``'s supernet, recording the paths it samples."""
    from nni.nas.oneshot.pytorch.sampling import RandomSamplingLightningModule

    class Recording(RandomSamplingLightningModule):
        recorded: list = []

        def resample(self):  # type: ignore[override]
            sample = super().resample()
            self.recorded.append(sample)  # one list append: the only addition to NNI's step
            return sample

    module = Recording(run.module.training_module)
    module.recorded = []
    return module


class _Batches:
    """A fixed list of batches as one iterable (Lightning reads a bare list as several loaders)."""

    def __init__(self, data: list) -> None:
        self.data = data

    def __iter__(self) -> Any:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class _OnEngineBuilt(SupernetCallback):
    """Calls ``fn(engine)`` once our module has built its engine (before any step)."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def on_engine_built(self, trainer: Any, module: Any, engine: Any) -> None:
        self.fn(engine)


def _fit(module: Any, data: list, warmup: int, on_engine_built: Optional[Callable[[Any], None]] = None) -> float:
    """Seconds per step of one ``Trainer.fit`` over ``data`` after ``warmup`` steps."""
    clock = _StepClock(warmup)
    callbacks = [clock] + ([_OnEngineBuilt(on_engine_built)] if on_engine_built is not None else [])
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=len(data), callbacks=callbacks, **_TRAINER_FLAGS)
    trainer.fit(module, train_dataloaders=_Batches(data))
    return (clock.end - clock.start) / (len(data) - warmup)


def _raw_loop(run: Any, data: list, archs: list, warmup: int) -> float:
    """CPU seconds per step of the bare SPOS loop on ``run``'s supernet (see the module docstring)."""
    from nni_dynamic_supernet.supernet import arch_setter
    model = run.module.model
    model.train()
    set_arch = arch_setter(model)
    optimizer = run.module.training_module.configure_optimizers()
    start = 0.0
    for i, ((x, y), arch) in enumerate(zip(data, archs)):
        if i == warmup:
            start = CLOCK()
        set_arch(arch)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (CLOCK() - start) / (len(data) - warmup)


def steps_per_second(repeats: int = 7, steps: int = 16, warmup: int = 4) -> dict:
    """Steps/s of our spos divided by steps/s of NNI's RandomOneShot (target >= 1.2)."""
    torch.set_num_threads(1)
    ours_run, nni_run, raw_run = make_run("spos"), make_run("spos"), make_run("spos")
    nni = _nni_module(nni_run)
    ours = ours_run.module
    labels = list(ours_run.search_space)
    data = [(batch[0], batch[1]) for batch in batches(ours_run, steps + warmup)]
    ours_s, nni_s, raw_s = [], [], []
    for _ in range(repeats + 1):  # the first round is a whole-fit warm-up
        nni.recorded = []
        nni_s.append(_fit(nni, data, warmup))
        archs = [{label: sample[label] for label in labels} for sample in nni.recorded]

        def replay(engine: Any, archs: list = archs) -> None:
            engine.path_sampler = _Replay(engine.path_sampler, archs)

        ours_s.append(_fit(ours, data, warmup, on_engine_built=replay))
        raw_s.append(_raw_loop(raw_run, data, archs, warmup))
    ours_s, nni_s, raw_s = ours_s[1:], nni_s[1:], raw_s[1:]
    per_round = [n / o for o, n in zip(ours_s, nni_s)]  # (1/o) / (1/n)
    floor = [n / w for w, n in zip(raw_s, nni_s)]
    return {"spos / NNI RandomOneShot steps per second": {
        "median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
        "numerator_s": statistics.median(ours_s), "denominator_s": statistics.median(nni_s),
        "steps_per_s_ours": 1.0 / statistics.median(ours_s), "steps_per_s_nni": 1.0 / statistics.median(nni_s)},
        "floor: bare PyTorch SPOS loop / NNI RandomOneShot steps per second": {
        "median": statistics.median(floor), "min": min(floor), "max": max(floor),
        "numerator_s": statistics.median(raw_s), "denominator_s": statistics.median(nni_s)}}
