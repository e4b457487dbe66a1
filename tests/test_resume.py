"""Exact resume: a run killed with SIGKILL at a random step and resumed with ``nds train --resume``
gives bit-identical results to an uninterrupted run, for every registered strategy and on NNI's
NAS-Bench-101 hub cell space.

The killed run is a forked child that sends itself SIGKILL at the start of a random training
step: nothing of that process gets to clean up, as with a preempted GPU or ``kill -9``. The
resumed run restarts from the last checkpoint Lightning wrote at an epoch end.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

from nni_dynamic_supernet import cli
from nni_dynamic_supernet.registry import list_strategies
from nni_dynamic_supernet.training.engine import SupernetEngine

from .hub_entry_points import hub_cell_spaces  # noqa: F401 (fixture)
from .tiny_recipe import write_recipe

EPOCHS, STEPS = 3, 3

#: Fields that legitimately differ between two runs of the same recipe (wall time, file locations).
_TIMING_KEYS = {"seconds", "checkpoint"}


def _config(tmp_path: Path, strategy: str, space: Optional[dict] = None) -> Path:
    training = {"epochs": EPOCHS, "max_steps_per_epoch": STEPS}
    if strategy.startswith("gm_"):
        # Splits after epochs 1 and 2 (one before and one after the kill, whatever the step), few GM batches.
        training.update({"split_epochs": [1, 2], "gm_batches": 2})
    extra = {"space": space} if space is not None else {}
    return write_recipe(tmp_path / f"{strategy}.yaml", strategy=strategy, seed=3, training=training, **extra,
                        data={"train_subset": 256}, ranking={"probe_archs": 2},
                        search={"searcher": "evolution", "max_evaluations": 6, "population": 4, "generations": 2,
                                "select_num": 2, "mutation_num": 2, "crossover_num": 2})


def _killed_run(config: str, out: str, kill_at: int) -> None:
    original = SupernetEngine.train_step

    def train_step(self, batch, step):  # type: ignore[no-untyped-def]
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, batch, step)

    SupernetEngine.train_step = train_step  # type: ignore[method-assign]
    cli.main(["train", "--config", config, "--out", out])


def _strip(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _kill_resume_and_compare(config: Path, tmp_path: Path, kill_at: int) -> None:
    """Kill a run at step ``kill_at``, resume it, and check it equals an uninterrupted run bit for bit."""
    killed = tmp_path / "killed"
    child = multiprocessing.get_context("fork").Process(target=_killed_run, args=(str(config), str(killed), kill_at))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -signal.SIGKILL, f"the child was not killed at step {kill_at} (exit {child.exitcode})"
    assert (killed / "lightning" / "last.ckpt").is_file()
    assert not (killed / "results.json").exists()

    assert cli.main(["train", "--config", str(config), "--out", str(killed), "--resume"]) == 0
    reference = tmp_path / "reference"
    assert cli.main(["train", "--config", str(config), "--out", str(reference)]) == 0

    resumed_results = json.loads((killed / "results.json").read_text())
    reference_results = json.loads((reference / "results.json").read_text())
    assert len(reference_results["training"]["history"]) == EPOCHS
    assert _strip(resumed_results) == _strip(reference_results)
    a = torch.load(killed / "supernet.pt", weights_only=True)
    b = torch.load(reference / "supernet.pt", weights_only=True)
    assert a["partition"] == b["partition"] or json.dumps(a["partition"], default=str) == json.dumps(
        b["partition"], default=str)
    for model_a, model_b in zip(a["models"], b["models"], strict=True):
        assert model_a.keys() == model_b.keys()
        assert all(torch.equal(model_a[k], model_b[k]) for k in model_a), "weights differ after resume"


@pytest.mark.parametrize("strategy", list_strategies())
def test_sigkill_at_a_random_step_then_resume_is_bit_identical(strategy: str, tmp_path: Path) -> None:
    # A random step after the first epoch's checkpoint, fixed per strategy so a failure reproduces.
    kill_at = int(np.random.RandomState(zlib.crc32(strategy.encode())).randint(STEPS, EPOCHS * STEPS))
    _kill_resume_and_compare(_config(tmp_path, strategy), tmp_path, kill_at)


def test_resume_is_bit_identical_on_an_nni_hub_cell_space(hub_cell_spaces: None, tmp_path: Path) -> None:
    # NNI's NAS-Bench-101 cell: InputChoice and nni.choice node counts under a constraint, not our NB201 space.
    config = _config(tmp_path, "spos", space={"name": "hub_nasbench101", "kwargs": {}})
    _kill_resume_and_compare(config, tmp_path, kill_at=STEPS + 1)
