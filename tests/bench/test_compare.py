"""``nds bench compare`` on a tiny setting: every recipe x seed is run and ranked against a table."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nni_dynamic_supernet.bench.compare import (compare_recipes, format_pairs, format_table, paired_statistics,
                                                split_recipe_overrides, summarize, table_overrides)
from nni_dynamic_supernet.errors import ConfigError

from .tiny_compare import tiny_config


def test_compare_two_recipes_two_seeds(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    out = compare_recipes(["spos", "fairnas"], [0, 1], config=str(config), out_dir=tmp_path / "cmp", plots=True,
                          pairs=[("fairnas", "spos")])
    assert len(out["runs"]) == 4
    assert [s["strategy"] for s in out["summary"]] == ["spos", "fairnas"]
    for s in out["summary"]:
        assert -1.0 <= s["kendall_tau"] <= 1.0 and s["kendall_tau_std"] >= 0.0
    assert "Noise ceiling" in out["table"] and "A perfect ranker against the table's seed mean" in out["table"]
    # Equal-compute columns: 1 epoch x 2 steps; SPOS forwards one path per step, FairNAS all 5 ops.
    for run in out["runs"]:
        assert run["steps"] == 2 and run["cpu_seconds"] > 0 and np.isfinite(run["final_loss"])
        assert run["path_forwards"] == (5 if run["strategy"] == "fairnas" else 1) * run["steps"]
        assert 0.0 <= run["median_predicted_accuracy"] <= 100.0
    assert "| path fwd | CPU s/run |" in out["table"]
    # Every ranking table shows the trivial rankers of the same table and each recipe's tau beyond size.
    assert "Trivial rankers of the same table" in out["table"] and "params " in out["table"]
    assert "partial tau \\| params" in out["table"] and "stratified subset (" in out["table"]
    for run in out["runs"]:
        assert {"params", "flops", "synflow", "jacov", "nwot"} <= set(run["baselines"])
        results = json.loads(Path(run["results"]).read_text())
        block = results["ranking"]["baselines"]
        assert math.isfinite(block["params"]["kendall_tau"]) and "partial_kendall_tau_given_params" in (
            block["complexity_controlled"])
    (pair,) = out["pairs"]
    assert (pair["technique"], pair["baseline"], pair["n"]) == ("fairnas", "spos", 2)
    by = {(r["strategy"], r["seed"]): r["kendall_tau"] for r in out["runs"]}
    assert pair["mean_diff"] == pytest.approx(np.mean([by[("fairnas", s)] - by[("spos", s)] for s in (0, 1)]))
    assert "fairnas vs spos" in out["table"]
    for name in ("compare.json", "compare.md", "compare_tau.png", "compare_scatter.png"):
        assert (tmp_path / "cmp" / name).is_file()


def test_summary_statistics_are_over_seeds() -> None:
    rows = [{"strategy": "a", "seed": s, "kendall_tau": t, "kendall_tau_stratified": t, "spearman": t,
             "p_at_top5": 0.0, "cb": 0.5, "rho_cc": 0.0, "top1_true_accuracy": 50.0, "seconds": 1.0}
            for s, t in enumerate([0.2, 0.4])]
    (summary,) = summarize(rows)
    # The sample SD (ddof = 1), as the paired SE beside it uses.
    assert summary["kendall_tau"] == pytest.approx(0.3) and summary["kendall_tau_std"] == pytest.approx(0.02 ** 0.5)
    assert "| a | 2 | 0.300 ± 0.141" in format_table([summary])


def test_unknown_recipe_fails_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="strategy"):
        compare_recipes(["nope"], [0], out_dir=tmp_path)
    assert not (tmp_path / "compare.json").exists()


def _rows(technique: list, baseline: list) -> list:
    return ([{"strategy": "spos_calr", "seed": s, "kendall_tau": t, "cb": 0.7, "rho_cc": -0.3, "steps": 10,
              "path_forwards": 10, "cpu_seconds": 2.0} for s, t in enumerate(technique)]
            + [{"strategy": "spos", "seed": s, "kendall_tau": t, "cb": 0.8, "rho_cc": -0.4, "steps": 10,
                "path_forwards": 10, "cpu_seconds": 1.0} for s, t in enumerate(baseline)])


def test_paired_statistics_match_scipy() -> None:
    from scipy import stats
    technique, baseline = [0.50, 0.60, 0.55, 0.70, 0.65], [0.40, 0.45, 0.50, 0.50, 0.60]
    (pair,) = paired_statistics(_rows(technique, baseline))
    diff = np.subtract(technique, baseline)
    assert (pair["technique"], pair["baseline"], pair["n"], pair["seeds"]) == ("spos_calr", "spos", 5, [0, 1, 2, 3, 4])
    assert pair["mean_diff"] == pytest.approx(diff.mean())
    assert pair["se"] == pytest.approx(diff.std(ddof=1) / np.sqrt(5))
    assert pair["p_ttest"] == pytest.approx(stats.ttest_rel(technique, baseline).pvalue)
    # All five differences positive: the exact two-sided Wilcoxon p-value is 2 / 2**5.
    assert pair["p_wilcoxon"] == pytest.approx(0.0625)
    assert pair["technique_cb"] == pytest.approx(0.7) and pair["baseline_rho_cc"] == pytest.approx(-0.4)
    assert pair["technique_cpu_seconds"] == pytest.approx(2.0)
    text = format_pairs([pair])
    assert "| spos_calr vs spos | 5 | +0.110 ± " in text


def test_paired_statistics_use_shared_seeds_only_and_skip_missing_recipes() -> None:
    rows = _rows([0.5, 0.6, 0.7], [0.4, 0.5])  # the technique has a seed the baseline lacks
    (pair,) = paired_statistics(rows, pairs=[("spos_calr", "spos"), ("spos_ms", "spos")])
    assert pair["seeds"] == [0, 1] and pair["mean_diff"] == pytest.approx(0.1)
    (single,) = paired_statistics(_rows([0.5], [0.4]))
    assert single["n"] == 1 and np.isnan(single["se"]) and np.isnan(single["p_ttest"])


def test_bad_pairs_fail_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="strategy"):
        compare_recipes(["spos"], [0], out_dir=tmp_path, pairs=[("nope", "spos")])
    assert not (tmp_path / "compare.json").exists()


def test_table_overrides_name_the_table() -> None:
    assert table_overrides(None) == {}
    v2 = table_overrides("v2")
    assert v2["data.name"] == "digits_hard_v2" and v2["ranking.ground_truth"] == "v2"
    assert v2["space.kwargs.channels"] == 8
    with pytest.raises(ConfigError, match="--table"):
        table_overrides("v9")


def test_compare_resumes_finished_runs_and_takes_recipe_overrides(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    first = compare_recipes(["spos"], [0], config=str(config), out_dir=tmp_path / "cmp", plots=False)
    assert first["reused_runs"] == 0
    # Adding a recipe reuses the finished spos run as it was; fairnas gets its own budget (2 epochs x 2 steps).
    second = compare_recipes(["spos", "fairnas"], [0], config=str(config), out_dir=tmp_path / "cmp", plots=False,
                             overrides={"fairnas:training.epochs": 2}, pairs=[("fairnas", "spos")])
    assert second["reused_runs"] == 1
    spos, fairnas = second["runs"]
    assert json.dumps(spos, sort_keys=True) == json.dumps(first["runs"][0], sort_keys=True)  # NaN-safe
    assert (fairnas["strategy"], fairnas["steps"], spos["steps"]) == ("fairnas", 4, 2)
    assert second["recipe_overrides"] == {"fairnas": {"training.epochs": 2}}
    # Another measure gets its own paired table; an unknown one is refused before anything runs.
    again = compare_recipes(["spos", "fairnas"], [0], config=str(config), out_dir=tmp_path / "cmp", plots=False,
                            overrides={"fairnas:training.epochs": 2}, pairs=[("fairnas", "spos")],
                            metrics=["kendall_tau", "spearman"])
    assert again["reused_runs"] == 2 and "Paired by seed on Spearman" in again["table"]
    (pair,) = again["pairs_by_metric"]["spearman"]
    assert pair["mean_diff"] == pytest.approx(fairnas["spearman"] - spos["spearman"])
    with pytest.raises(ConfigError, match="--metrics"):
        compare_recipes(["spos"], [0], config=str(config), out_dir=tmp_path / "cmp", metrics=["accuracy"])
    # A changed job is never trained over the finished run of the old one (nor are runs dropped from
    # compare.json): it is refused before anything runs, and runs in a folder of its own.
    before = (tmp_path / "cmp" / "compare.json").read_bytes()
    with pytest.raises(ConfigError, match="finished run of another job"):
        compare_recipes(["spos", "fairnas"], [0], config=str(config), out_dir=tmp_path / "cmp", plots=False,
                        overrides={"training.epochs": 2})
    with pytest.raises(ConfigError, match="does not include"):
        compare_recipes(["spos"], [0], config=str(config), out_dir=tmp_path / "cmp", plots=False)
    assert (tmp_path / "cmp" / "compare.json").read_bytes() == before
    third = compare_recipes(["spos"], [0], config=str(config), out_dir=tmp_path / "cmp2", plots=False,
                            overrides={"training.epochs": 2})
    assert third["reused_runs"] == 0 and third["runs"][0]["steps"] == 4


def test_recipe_overrides_must_name_a_compared_recipe() -> None:
    common, own = split_recipe_overrides({"training.lr": 0.1, "sumnas:training.epochs": 12}, ["fairnas", "sumnas"])
    assert common == {"training.lr": 0.1} and own == {"fairnas": {}, "sumnas": {"training.epochs": 12}}
    with pytest.raises(ConfigError, match="--set.*spos"):
        split_recipe_overrides({"spos:training.epochs": 2}, ["fairnas"])
