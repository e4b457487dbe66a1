"""``nds bench sweep`` on a tiny setting: budgets, plateau detection and resuming from rows.jsonl."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nni_dynamic_supernet.bench.sweep import budget_steps, plateau_budget, sweep_budgets
from nni_dynamic_supernet.errors import ConfigError

from .tiny_compare import SPACE, tiny_table


def _rows(taus_by_budget: dict) -> list:
    return [{"strategy": "spos", "seed": seed, "epochs": budget, "kendall_tau": tau}
            for budget, taus in taus_by_budget.items() for seed, tau in enumerate(taus)]


def test_a_plateau_needs_the_whole_interval_of_the_paired_gain_below_delta() -> None:
    # 60 -> 120 gains about 0.1 on every seed; 120 -> 240 gains 0 +- 0.001: only then is it a plateau.
    rows = _rows({60: [0.30, 0.32, 0.28, 0.31], 120: [0.40, 0.42, 0.38, 0.41], 240: [0.401, 0.419, 0.380, 0.411]})
    steps = budget_steps(rows, "spos", [60, 120, 240])
    assert [(s["from"], s["to"], s["n"]) for s in steps] == [(60, 120, 4), (120, 240, 4)]
    assert steps[0]["diff_mean"] == pytest.approx(0.1)
    assert plateau_budget(steps, 0.02) == 120


def test_a_noisy_small_gain_is_no_plateau() -> None:
    # Mean gain 0 but seeds disagree by +-0.1: the interval reaches well above 0.02, so no plateau is claimed.
    rows = _rows({60: [0.3, 0.3, 0.3], 120: [0.4, 0.2, 0.3]})
    assert plateau_budget(budget_steps(rows, "spos", [60, 120]), 0.02) is None


def test_budget_steps_pair_only_the_seeds_run_at_both_budgets() -> None:
    rows = _rows({60: [0.1, 0.2, 0.3], 120: [0.2, 0.3]})  # seed 2 ran only at 60
    (step,) = budget_steps(rows, "spos", [60, 120])
    assert step["seeds"] == [0, 1] and step["diff_mean"] == pytest.approx(0.1)


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
    # One seed per budget: every SD is NaN, so compare as JSON (NaN equals NaN there).
    assert json.dumps(again["summary"][0]["budgets"]) == json.dumps(summary["budgets"])


def test_bad_budgets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--epochs"):
        sweep_budgets(["spos"], [0], [0, 60], out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
