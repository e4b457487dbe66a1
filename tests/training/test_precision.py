"""bf16 autocast and channels_last on every strategy (CPU), and the float16 GradScaler path of the engine.

bf16 autocast runs on the CPU, so the whole Lightning path (precision plugin, manual
optimization, MS states, SUMNAS inner/outer steps, GM split, PA norms, DA scores) is
exercised here for a few steps; float16 needs CUDA in Lightning, so its GradScaler logic
is tested on the engine directly with a CPU ``torch.amp.GradScaler``.
"""
from __future__ import annotations

import math

import pytest
import torch

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.pipeline import prepare, train
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import list_strategies
from tests.tiny_recipe import tiny_recipe

torch.set_num_threads(1)


def _recipe(strategy: str, **training) -> Recipe:
    raw = tiny_recipe(strategy=strategy, training={"epochs": 2, "max_steps_per_epoch": 2, "gm_batches": 2,
                                                   "split_epochs": [1], "split_branching": [2], **training})
    if "gm" not in strategy:
        for key in ("gm_batches", "split_epochs", "split_branching"):
            raw["training"].pop(key)
    return Recipe.from_dict(raw)


def _conv_watch(run):
    """Record the dtype and memory format of every first-conv call inside a training step.

    (GM's gradient matching at the epoch end runs in float32 on purpose: it is not recorded.)
    """
    seen: list = []
    inside = [False]
    step = run.module.training_step

    def watched_step(*args, **kwargs):
        inside[0] = True
        try:
            return step(*args, **kwargs)
        finally:
            inside[0] = False
    run.module.training_step = watched_step
    convs = [next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)) for model in run.module.supernets()]
    for conv in convs:  # one per partition leaf (few-shot / GM leaves have their own weights)
        conv.register_forward_hook(lambda m, i, o: seen.append(
            (o.dtype, i[0].is_contiguous(memory_format=torch.channels_last) and not i[0].is_contiguous()))
            if inside[0] else None)
    return seen, convs[0]


@pytest.mark.parametrize("strategy", list_strategies())
def test_bf16_autocast_trains_every_strategy(strategy: str) -> None:
    run = prepare(_recipe(strategy, precision="bf16"))
    seen, _ = _conv_watch(run)
    info = train(run, None)
    assert info["steps"] == 4
    assert seen and all(dtype == torch.bfloat16 for dtype, _ in seen), "autocast did not run the convolutions in bf16"
    # Weights stay float32 and finite; no step diverged.
    assert all(p.dtype == torch.float32 for p in run.module.parameters())
    assert all(torch.isfinite(p).all() for p in run.module.parameters())
    assert run.module.engine.skipped_steps == 0


@pytest.mark.parametrize("strategy", list_strategies())
def test_channels_last_trains_every_strategy(strategy: str) -> None:
    run = prepare(_recipe(strategy, channels_last=True))
    seen, conv = _conv_watch(run)
    info = train(run, None)
    assert info["steps"] == 4
    assert seen and all(nhwc for _, nhwc in seen), "the convolution inputs were not channels_last"
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert all(torch.isfinite(p).all() for p in run.module.parameters())


def test_float16_needs_cuda() -> None:
    with pytest.raises(ConfigError, match="training.precision"):
        Recipe.from_dict(tiny_recipe(training={"precision": 16, "accelerator": "cpu"}))
    assert Recipe.from_dict(tiny_recipe(training={"precision": "bf16"})).training.precision == "bf16"
    with pytest.raises(ConfigError, match="allowed values"):
        Recipe.from_dict(tiny_recipe(training={"precision": 64}))


def _engine_with_scaler(strategy: str, init_scale: float, overflow: bool = False):
    """An engine with a CPU GradScaler; ``overflow`` makes every scaled gradient infinite (what fp16 does)."""
    from benchmarks.common import batches
    run = prepare(_recipe(strategy))
    engine = run.module.build_engine(100)
    engine.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    blow_up = float("inf") if overflow else 1.0
    engine.backward = lambda loss: (engine.scaler.scale(loss) * blow_up).backward()
    return run, engine, batches(run, 3)


@pytest.mark.parametrize("strategy", ["spos", "sumnas"])
def test_scaled_steps_equal_unscaled_steps(strategy: str) -> None:
    """A power-of-two loss scale is undone exactly: same weights as the float32 step (no autocast here)."""
    plain_run = prepare(_recipe(strategy))
    plain = plain_run.module.build_engine(100)
    run, scaled, data = _engine_with_scaler(strategy, 2.0 ** 10)
    for step, batch in enumerate(data):
        plain.train_step(batch, step)
        scaled.train_step(batch, step)
    assert scaled.scaler_skips == 0
    for a, b in zip(plain_run.module.parameters(), run.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["spos", "pada", "sumnas"])
def test_overflow_is_a_scaler_skip_not_divergence(strategy: str) -> None:
    """Scaled gradients that overflow lower the scale and skip the step; weights stay; no divergence error."""
    run, engine, data = _engine_with_scaler(strategy, 2.0 ** 10, overflow=True)
    before = [p.detach().clone() for p in run.module.parameters()]
    loss = engine.train_step(data[0], 0)
    assert math.isfinite(float(loss))
    assert engine.scaler_skips >= 1 and engine.skipped_steps == 0
    assert float(engine.scaler.get_scale()) < 2.0 ** 10  # backed off
    assert all(torch.equal(a, b) for a, b in zip(before, run.module.parameters()))


def test_nan_loss_under_the_scaler_is_still_divergence() -> None:
    from nni_dynamic_supernet.training.engine import NonFiniteLossError
    run, engine, data = _engine_with_scaler("spos", 2.0 ** 10)
    x, y = data[0][0].clone(), data[0][1]
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError):
        engine.train_step((x, y), 0)
