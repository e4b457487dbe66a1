"""A run whose loss turns NaN stops with one line naming the step, the subnet and the last good
checkpoint, keeps that checkpoint, and writes no result; ``--skip-nonfinite`` trains through."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet import cli
from nni_dynamic_supernet.training.engine import SupernetEngine

from .tiny_recipe import write_recipe

_CHANGES = {"training": {"epochs": 3, "max_steps_per_epoch": 2}, "output": {"diagnostics": False}}
POISONED_STEP = 3  # in the second epoch: the first epoch's checkpoint is the last good one


@pytest.fixture()
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SupernetEngine.train_step

    def train_step(self, batch, step):  # type: ignore[no-untyped-def]
        if step == POISONED_STEP:
            batch = (torch.full_like(batch[0], float("nan")), *batch[1:])
        return original(self, batch, step)

    monkeypatch.setattr(SupernetEngine, "train_step", train_step)


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(poisoned: None, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    config = write_recipe(tmp_path / "r.yaml", **_CHANGES)
    out = tmp_path / "out"
    code = cli.main(["train", "--config", str(config), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1
    assert f"step {POISONED_STEP} training subnet {{" in err[0]
    last = out / "lightning" / "last.ckpt"
    assert str(last) in err[0] and "--skip-nonfinite" in err[0]
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 0 and checkpoint["nds_batches_done"] == 2  # the first epoch, before the NaN
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    assert not (out / "results.json").exists() and not (out / "supernet.pt").exists()


def test_skip_nonfinite_trains_through_and_counts(poisoned: None, tmp_path: Path) -> None:
    config = write_recipe(tmp_path / "r.yaml", **_CHANGES)
    out = tmp_path / "out"
    assert cli.main(["train", "--config", str(config), "--out", str(out), "--skip-nonfinite"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["training"]["skipped_nonfinite_steps"] == 1
    assert results["training"]["steps"] == 6
