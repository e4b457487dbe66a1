"""The CUDA path (skipped without a GPU; ``benchmarks/gpu_check.sh`` runs these with ``-m cuda``).

float16 with a GradScaler exists only on CUDA in Lightning, so the full Lightning path of
``training.precision: 16`` (our precision plugin, the engine's unscale/check/update) is
tested here: spos, PA&DA (gradient norms of unscaled gradients) and SUMNAS (inner/outer
steps) for a few steps each, then evaluation on the GPU.
"""
from __future__ import annotations

import pytest
import torch

from nni_dynamic_supernet.pipeline import prepare, predict, train
from nni_dynamic_supernet.recipe import Recipe
from tests.tiny_recipe import tiny_recipe

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("precision", ["16", "bf16"])
@pytest.mark.parametrize("strategy", ["spos", "pada", "sumnas", "spos_calr_ms"])
def test_mixed_precision_trains_on_cuda(strategy: str, precision: str) -> None:
    run = prepare(Recipe.from_dict(tiny_recipe(strategy=strategy, training={
        "accelerator": "gpu", "precision": precision, "epochs": 2, "max_steps_per_epoch": 3, "channels_last": True})))
    assert run.device.type == "cuda"
    info = train(run, None)
    assert info["steps"] == 6
    engine = run.module.engine
    assert (engine.scaler is not None) == (precision == "16")
    assert all(torch.isfinite(p).all() for p in run.module.parameters())
    assert next(run.module.parameters()).device.type == "cuda"  # evaluation runs where training ran
    arch = {label: choices[0] for label, choices in run.search_space.items()}
    assert 0.0 <= predict(run, [arch], progress=False)[0]["predicted_accuracy"] <= 100.0


def test_data_on_device_on_cuda() -> None:
    run = prepare(Recipe.from_dict(tiny_recipe(data={"on_device": True}, training={"accelerator": "gpu"})))
    info = train(run, None)
    assert info["steps"] == 1


def test_nds_train_on_cuda_with_diagnostics(tmp_path) -> None:
    """``nds train``'s path (``run_recipe``): the epoch-end diagnostics probe a CPU batch on the GPU supernet."""
    from nni_dynamic_supernet.pipeline import run_recipe
    results = run_recipe(Recipe.from_dict(tiny_recipe(
        training={"accelerator": "gpu", "precision": "bf16", "max_steps_per_epoch": 2},
        output={"diagnostics": True})), tmp_path, progress=False)
    row = results["diagnostics"]["epochs"][0]
    assert row["grad_std"] == row["grad_std"]  # finite probe, not NaN
    assert (tmp_path / "results.json").is_file()
