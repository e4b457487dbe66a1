"""``nds bench verdict`` on a tiny registration: runs, result file, resume, refusals and the docs table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nni_dynamic_supernet.bench import verdict as verdict_mod
from nni_dynamic_supernet.bench.paired_stats import min_detectable_effect
from nni_dynamic_supernet.bench.verdict import run_verdicts
from nni_dynamic_supernet.bench.verdict_registration import load_registration
from nni_dynamic_supernet.bench.verdict_table import verdict_table_rst
from nni_dynamic_supernet.cli import main
from nni_dynamic_supernet.errors import ConfigError

from .tiny_compare import tiny_registration as _register


def test_a_registration_runs_to_a_complete_result_and_resumes(tmp_path: Path, monkeypatch) -> None:
    reg = _register(tmp_path)
    (result,) = run_verdicts([reg], runs_dir=tmp_path / "runs")
    assert result["status"] == "complete" and result["n_seeds"] == 2 and result["n_registered"] == 2
    assert [p["seed"] for p in result["per_seed"]] == [7, 8]
    diffs = [p["technique"] - p["baseline"] for p in result["per_seed"]]
    assert result["diff_mean"] == pytest.approx(sum(diffs) / 2)
    assert result["p_sign_flip_method"] == "exact" and result["p_sign_flip"] in (0.5, 1.0)
    assert len(result["ci95"]) == 2 and result["ci95"][0] <= result["diff_mean"] <= result["ci95"][1]
    assert result["mde80"] == pytest.approx(min_detectable_effect(0.1, 2))
    for arm in ("technique", "baseline"):
        assert result["compute"][arm]["steps"] == 2 and result["compute"][arm]["path_forwards"] == 2
        assert result["compute"][arm]["cpu_seconds"] > 0
    assert len(result["runs"]) == 4 and all(len(r["predictions"]) == 12 for r in result["runs"])
    assert all(r["environment"]["torch"] and r["environment"]["cpu_capability"] for r in result["runs"])
    written = reg.with_name("tiny.result.json")
    assert json.loads(written.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}")) == result

    # A second call trains nothing: every job is found in the result file (run folders deleted).
    def no_training(job: dict) -> dict:
        raise AssertionError("a finished job ran again")
    monkeypatch.setattr(verdict_mod, "_train", no_training)
    import shutil
    shutil.rmtree(tmp_path / "runs")
    (again,) = run_verdicts([reg], runs_dir=tmp_path / "runs")
    assert again["per_seed"] == result["per_seed"]


def test_an_edited_registration_is_refused_once_its_runs_started(tmp_path: Path) -> None:
    reg = _register(tmp_path)
    run_verdicts([reg], runs_dir=tmp_path / "runs")
    before = reg.with_name("tiny.result.json").read_bytes()
    reg.write_text(reg.read_text().replace("a paper", "another paper"))
    with pytest.raises(ConfigError, match="registration changed after its runs started"):
        run_verdicts([reg], runs_dir=tmp_path / "runs")
    assert reg.with_name("tiny.result.json").read_bytes() == before


def test_a_comment_or_output_change_of_the_base_recipe_keeps_every_finished_job(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    reg = _register(tmp_path)
    (result,) = run_verdicts([reg], runs_dir=tmp_path / "runs")
    config = tmp_path / "base.yaml"
    doc = yaml.safe_load(config.read_text())
    doc.setdefault("output", {})["logger"] = "csv"
    config.write_text("# a comment about the recipe\n" + yaml.safe_dump(doc))

    def no_training(job: dict) -> dict:
        raise AssertionError("a finished job ran again")
    monkeypatch.setattr(verdict_mod, "_train", no_training)
    (again,) = run_verdicts([reg], runs_dir=tmp_path / "runs")
    assert again["per_seed"] == result["per_seed"] and len(again["runs"]) == 4


def test_a_result_file_is_never_shrunk_by_a_changed_base_recipe(tmp_path: Path, capsys) -> None:
    reg = _register(tmp_path)
    run_verdicts([reg], runs_dir=tmp_path / "runs")
    written = reg.with_name("tiny.result.json")
    before = written.read_bytes()
    config = tmp_path / "base.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["training"]["lr"] = 0.01
    config.write_text(yaml.safe_dump(doc))
    args = ["bench", "verdict", str(reg), "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "4 finished jobs" in err and "--overwrite" in err and "\n" not in err
    assert written.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    after = json.loads(written.read_text())
    assert after["status"] == "complete" and len(after["runs"]) == 4 and written.read_bytes() != before


@pytest.mark.parametrize("change, field", [
    ({"n": 3}, "n"), ({"mde": 0.01}, "mde"), ({"measure": "accuracy"}, "measure"), ({"seeds": [1, 1]}, "seeds"),
    ({"technique": {"recipe": "nope"}}, "technique.recipe"), ({"kind": "other"}, "kind"), ({"extra": 1}, "extra"),
    ({"format": "x"}, "format"), ({"registered": "yesterday"}, "registered"),
])
def test_bad_registrations_are_one_line_errors(tmp_path: Path, change: dict, field: str) -> None:
    reg = _register(tmp_path, **change)
    with pytest.raises(ConfigError) as err:
        load_registration(reg)
    assert f": {field}" in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_missing_registration_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["bench", "verdict", str(tmp_path / "none.yaml"), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nds: error: REGISTRATION=") and "\n" not in err


def test_the_table_shows_each_family_test_and_gives_no_verdict_before_the_last_seed(tmp_path: Path) -> None:
    reg = _register(tmp_path)
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(
        {"format": "nds-verdict-family/1", "tests": ["tiny"], "correction": "holm", "p_value": "sign_flip",
         "alpha": 0.05, "registered": "2026-12-07"}))
    assert "not run yet" in verdict_table_rst(tmp_path)
    run_verdicts([reg], runs_dir=tmp_path / "runs")
    text = verdict_table_rst(tmp_path)
    # Two seeds: the exact sign-flip p is at least 0.5, so the test cannot replicate anything.
    assert "   * - tiny" in text and "2 of 2" in text and "not replicated" in text
    out = tmp_path / "table.rst"
    assert main(["bench", "verdicts", "--dir", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text() == text


def test_registered_verdicts_of_the_repository_are_valid_and_use_fresh_seeds() -> None:
    """Every registered test of benchmarks/verdicts loads, and no seed was used by an exploratory run (0-14)."""
    from nni_dynamic_supernet.bench.verdict_registration import load_family
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "verdicts"
    family = load_family(folder / "family.yaml")
    assert len(family.tests) >= 6
    for name in family.tests:
        reg = load_registration(folder / f"{name}.yaml")
        assert min(reg.seeds) >= 1000, name
        assert reg.n >= (10 if reg.name in ("gm_nas", "shifting") else 20), name


def test_the_docs_verdict_table_is_what_the_result_files_say() -> None:
    """docs/_generated/verdict_table.rst is regenerated from benchmarks/verdicts and must match it exactly.

    After a verdict run, refresh it with ``nds bench verdicts --out docs/_generated/verdict_table.rst``.
    """
    repo = Path(__file__).resolve().parents[2]
    shipped = (repo / "docs" / "_generated" / "verdict_table.rst").read_text()
    assert shipped == verdict_table_rst(repo / "benchmarks" / "verdicts")


@pytest.mark.slow
def test_the_shipped_trivial_rankers_are_recomputed_exactly(tmp_path: Path) -> None:
    """benchmarks/verdicts/baselines.json is what ``nds bench verdicts --refresh-baselines`` computes (a minute)."""
    import shutil
    from nni_dynamic_supernet.bench.verdict_table import refresh_baselines
    repo = Path(__file__).resolve().parents[2]
    copy = tmp_path / "verdicts"
    shutil.copytree(repo / "benchmarks" / "verdicts", copy)
    refresh_baselines(copy)
    assert json.loads((copy / "baselines.json").read_text()) == json.loads(
        (repo / "benchmarks" / "verdicts" / "baselines.json").read_text())
