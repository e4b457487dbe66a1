"""The engine's backward and optimizer step under Lightning: direct torch calls only where Lightning would add nothing."""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from nni_dynamic_supernet.nni_bridge import direct_backward_and_step, plain_backward
from nni_dynamic_supernet.pipeline import prepare
from nni_dynamic_supernet.recipe import Recipe

from ..tiny_recipe import tiny_recipe

torch.set_num_threads(1)

_STEPS = 3


class _CountingHooks(pl.Callback):
    """A user's gradient callback: it must see every backward and optimizer step."""

    def __init__(self) -> None:
        self.after_backward = 0
        self.before_step = 0

    def on_after_backward(self, trainer: Any, module: Any) -> None:
        self.after_backward += 1

    def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None:
        self.before_step += 1


def _train(callbacks: list, precision: str = "32-true") -> tuple:
    run = prepare(Recipe.from_dict(tiny_recipe(training={"max_steps_per_epoch": _STEPS})))
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=_STEPS, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, use_distributed_sampler=False,
                         callbacks=callbacks, precision=precision)
    trainer.fit(run.module, train_dataloaders=run.loader("train", shuffle=True, drop_last=True))
    weights = [p.detach().clone() for p in run.module.model.parameters()]
    return trainer, run.module, weights


def test_plain_fit_calls_torch_directly_and_still_counts_steps() -> None:
    trainer, module, _ = _train([])
    assert direct_backward_and_step(trainer, module)
    assert module.engine.backward is plain_backward
    assert trainer.global_step == _STEPS  # checkpoints and loggers read it


def test_a_gradient_callback_keeps_lightnings_dispatch_with_the_same_result() -> None:
    hooks = _CountingHooks()
    trainer, module, weights = _train([hooks])
    assert not direct_backward_and_step(trainer, module)
    assert module.engine.backward == module.manual_backward
    assert (hooks.after_backward, hooks.before_step, trainer.global_step) == (_STEPS, _STEPS, _STEPS)
    _, _, direct = _train([])
    assert all(torch.equal(a, b) for a, b in zip(weights, direct))


def test_mixed_precision_keeps_lightnings_dispatch() -> None:
    trainer, module, _ = _train([], precision="bf16-mixed")
    assert not direct_backward_and_step(trainer, module)
    assert trainer.global_step == _STEPS
