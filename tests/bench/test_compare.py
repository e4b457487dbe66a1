"""``nds bench compare`` on a tiny setting: every recipe x seed is run and ranked against a table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nni_dynamic_supernet.bench.compare import compare_recipes, format_table, summarize
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking import GroundTruth

SPACE = {"channels": 2, "cells_per_stage": 1}


def _table(path: Path) -> Path:
    rng = np.random.RandomState(0)
    ops = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
    labels = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]
    archs, seen = [], set()
    while len(archs) < 12:
        arch = {label: ops[rng.randint(5)] for label in labels}
        if json.dumps(arch, sort_keys=True) not in seen:
            seen.add(json.dumps(arch, sort_keys=True))
            archs.append(arch)
    per_seed = [{"0": float(a), "1": float(a + rng.randn())} for a in rng.uniform(20, 80, len(archs))]
    truth = GroundTruth.from_pairs(archs, [float(np.mean(list(p.values()))) for p in per_seed], space="nas_bench_201",
                                   space_kwargs=SPACE, dataset="digits_hard", metric="test_accuracy", recipe={},
                                   seeds=[0, 1], per_seed=per_seed, params=[1000 + i for i in range(len(archs))])
    truth.save(path)
    return path


def test_compare_two_recipes_two_seeds(tmp_path: Path) -> None:
    table = _table(tmp_path / "gt.json")
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump({
        "space": {"name": "nas_bench_201", "kwargs": SPACE},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 1, "max_steps_per_epoch": 2},
        "search": {"bn_batches": 1},
        "ranking": {"ground_truth": str(table), "probe_archs": 2},
        "output": {"diagnostics": False},
    }))
    out = compare_recipes(["spos", "spos_calr_ms"], [0, 1], config=str(config), out_dir=tmp_path / "cmp", plots=True)
    assert len(out["runs"]) == 4
    assert [s["strategy"] for s in out["summary"]] == ["spos", "spos_calr_ms"]
    for s in out["summary"]:
        assert -1.0 <= s["kendall_tau"] <= 1.0 and s["kendall_tau_std"] >= 0.0
    assert "Noise ceiling" in out["table"]
    for name in ("compare.json", "compare.md", "compare_tau.png", "compare_scatter.png"):
        assert (tmp_path / "cmp" / name).is_file()


def test_summary_statistics_are_over_seeds() -> None:
    rows = [{"strategy": "a", "seed": s, "kendall_tau": t, "kendall_tau_stratified": t, "spearman": t,
             "p_at_top5": 0.0, "cb": 0.5, "rho_cc": 0.0, "top1_true_accuracy": 50.0, "seconds": 1.0}
            for s, t in enumerate([0.2, 0.4])]
    (summary,) = summarize(rows)
    assert summary["kendall_tau"] == pytest.approx(0.3) and summary["kendall_tau_std"] == pytest.approx(0.1)
    assert "| a | 0.300 ± 0.100" in format_table([summary])


def test_unknown_recipe_fails_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="strategy"):
        compare_recipes(["nope"], [0], out_dir=tmp_path)
    assert not (tmp_path / "compare.json").exists()
