"""``nds bench sweep`` on a tiny setting: budgets, plateau detection and resuming from rows.jsonl."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nni_dynamic_supernet.bench.sweep import plateau_budget, sweep_budgets
from nni_dynamic_supernet.errors import ConfigError

from .tiny_compare import SPACE, tiny_table


@pytest.mark.parametrize("budgets, taus, expected", [
    ([60, 120, 240, 480], [0.40, 0.48, 0.55, 0.56], 240),
    ([60, 120], [0.40, 0.41], 60),
    ([60, 120, 240], [0.40, 0.45, 0.50], None),
    ([60, 120], [0.50, 0.40], 60),  # a drop is no gain either
])
def test_plateau_budget(budgets, taus, expected):
    assert plateau_budget(budgets, taus) == expected


def test_sweep_two_budgets_and_resume(tmp_path: Path, monkeypatch) -> None:
    table = tiny_table(tmp_path / "gt.json")
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump({
        "space": {"name": "nas_bench_201", "kwargs": SPACE},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"max_steps_per_epoch": 1},
        "search": {"bn_batches": 1},
        "ranking": {"ground_truth": str(table), "probe_archs": 0},
        "output": {"diagnostics": False, "plots": False},
    }))
    out = sweep_budgets(["spos"], [0], [2, 1], config=str(config), out_dir=tmp_path / "sw")
    assert out["budgets"] == [1, 2]
    (summary,) = out["summary"]
    assert [c["epochs"] for c in summary["budgets"]] == [1, 2]
    assert [c["steps"] for c in summary["budgets"]] == [1, 2]
    assert [c["path_forwards"] for c in summary["budgets"]] == [1, 2]
    assert "| spos | 2 | 1 |" in out["table"] and "plateau" in out["table"]
    assert (tmp_path / "sw" / "sweep.md").is_file()

    def no_training(job):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("nni_dynamic_supernet.bench.compare._run_one", no_training)
    again = sweep_budgets(["spos"], [0], [1, 2], config=str(config), out_dir=tmp_path / "sw")
    assert again["summary"][0]["budgets"] == summary["budgets"]


def test_bad_budgets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--epochs"):
        sweep_budgets(["spos"], [0], [0, 60], out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
