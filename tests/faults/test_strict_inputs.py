"""Malformed configs and JSON of every kind the commands read: one bounded line, exit 2, nothing written."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nni_dynamic_supernet.errors import ConfigError, short_repr

from ..tiny_recipe import tiny_recipe, write_recipe
from .helpers import assert_nothing_half_written, assert_one_line, assert_short_lines, run_nds, snapshot


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML of about 600 bytes whose nested aliases inside ``space.kwargs`` stand for width**levels values."""
    lines = ["strategy: spos", "space:", "  name: nas_bench_201", "  kwargs:",
             "    a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


YAML_CASES = [
    # (id, YAML text, what the line names)
    ("two-training-sections", "strategy: spos\ntraining:\n  epochs: 1\nseed: 0\ntraining:\n  lr: 0.1\n",
     "duplicate key 'training' at lines 2 and 5"),
    ("duplicate-field", "training:\n  epochs: 1\n  epochs: 2\n", "duplicate key 'epochs' at lines 2 and 3"),
    ("duplicate-in-flow-mapping", "space: {name: nas_bench_201, name: other}\n", "duplicate key 'name'"),
    ("alias-bomb", alias_bomb(), "aliases expand to more than"),
    ("recursive-alias", "space:\n  kwargs:\n    x: &a [*a]\n", "aliases expand to more than"),
    ("deep-nesting", "space:\n  kwargs:\n    x: " + "[" * 5000 + "]" * 5000 + "\n", "--config"),
    ("python-tag", "strategy: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("tab-indent", "training:\n\tepochs: 1\n", "not valid YAML"),
    ("not-a-mapping", "- a\n- b\n", "must hold a mapping"),
    ("binary", None, "not a text file"),
    ("huge-value", "strategy: spos\nseed: '" + "9" * 500_000 + "'\n", "truncated: a str of 500,000 characters"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_a_malformed_config_is_one_bounded_line(text: str, expected: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    if text is None:
        config.write_bytes(b"\xff\xfe\x00\x81" * 64)
    else:
        config.write_text(text)
    out = tmp_path / "out"
    code, stdout, err = run_nds(["train", "--config", config, "--out", out])
    assert_one_line(err, code, 2, expected)
    assert_short_lines(stdout)
    assert not out.exists()


def test_a_config_above_one_megabyte_is_refused_before_it_is_read(tmp_path: Path) -> None:
    config = tmp_path / "big.yaml"
    config.write_text("strategy: spos\n# " + "x" * 2_000_000 + "\n")
    code, _, err = run_nds(["train", "--config", config, "--out", tmp_path / "out"])
    assert_one_line(err, code, 2, "--config", "2,000,018 bytes", "at most 1,000,000")


@pytest.mark.parametrize("value, expected", [
    ("{a: 1, a: 2}", "duplicate key 'a'"),
    ("[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], "
     "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]",
     "aliases expand"),
    ("x" * 100_000, "truncated: a str of 100,000 characters"),
], ids=["duplicate", "alias-bomb", "long-value"])
def test_a_malformed_set_value_is_one_bounded_line(value: str, expected: str, config: Path, tmp_path: Path) -> None:
    code, _, err = run_nds(["train", "--config", config, "--out", tmp_path / "out", "--set",
                            f"space.kwargs.channels={value}"])
    assert_one_line(err, code, 2, "space.kwargs.channels", expected)


def test_error_values_are_cut_and_sized() -> None:
    nested: list = [1] * 9
    for _ in range(40):
        nested = [nested] * 9  # 9**41 values if written out
    text = str(ConfigError("space.kwargs.x", nested, "must be a mapping"))
    assert len(text) < 400 and "truncated: a list of 9 items" in text
    assert short_repr("y" * 10, limit=200) == repr("y" * 10)
    assert len(str(ConfigError("f" * 5000, "v", "fix " * 2000))) <= 900


def _good_arch(finished_run: Path) -> dict:
    return json.loads((finished_run / "best_arch.json").read_text())


@pytest.fixture
def table(tmp_path: Path) -> Path:
    from ..bench.tiny_compare import tiny_table
    return tiny_table(tmp_path / "gt.json")


def _rank_case(preds: object, table: Path, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "preds.json"
    path.write_text(preds if isinstance(preds, str) else json.dumps(preds, allow_nan=True))
    out = tmp_path / "rank.json"
    code, stdout, err = run_nds(["rank", "--predictions", path, "--ground-truth", table, "--out", out])
    assert not out.exists()
    assert_short_lines(stdout)
    return code, err


def test_rank_refuses_nan_inf_and_wrong_typed_predictions(table: Path, tmp_path: Path) -> None:
    truth = json.loads(table.read_text())
    arch = truth["entries"][0]["arch"]
    cases = [
        ([{"arch": arch, "predicted_accuracy": math.nan}], "--predictions[0].predicted_accuracy"),
        ([{"arch": arch, "predicted_accuracy": math.inf}], "finite number"),
        ([{"arch": arch, "predicted_accuracy": "50"}], "finite number"),
        ([{"arch": "cell/0_1=none", "predicted_accuracy": 50.0}], "--predictions[0].arch"),
        ([{"arch": {"cell/0_1": {"op": "none"}}, "predicted_accuracy": 50.0}], "--predictions[0].arch.cell/0_1"),
        ([["arch", 50.0]], "--predictions[0]"),
        ({"arch": arch}, "non-empty list"),
        ('[{"arch": {"cell/0_1": "no', "may be truncated"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ]
    for preds, expected in cases:
        code, err = _rank_case(preds, table, tmp_path)
        assert_one_line(err, code, 2, expected)
    # Ground truth with NaN is refused the same way (the table's own validation).
    truth["entries"][0]["accuracy"] = math.nan
    (tmp_path / "nan_gt.json").write_text(json.dumps(truth, allow_nan=True))
    code, err = _rank_case([{"arch": arch, "predicted_accuracy": 50.0}], tmp_path / "nan_gt.json", tmp_path)
    assert_one_line(err, code, 2, "--ground-truth", "finite number")


def test_evaluate_and_export_refuse_wrong_typed_archs(finished_run: Path, tmp_path: Path) -> None:
    arch = _good_arch(finished_run)
    ckpt = finished_run / "supernet.pt"
    label = next(iter(arch))
    for archs, expected in (([{**arch, label: None}], f"--archs[0].{label}"), ([arch, "x"], "--archs"),
                            ([{**arch, label: True}], "a choice must be")):
        (tmp_path / "archs.json").write_text(json.dumps(archs))
        code, _, err = run_nds(["evaluate", "--checkpoint", ckpt, "--archs", tmp_path / "archs.json", "--out",
                                tmp_path / "p.json"])
        assert_one_line(err, code, 2, expected)
    for bad, expected in (({label: [1, {"x": 1}]}, f"--arch.{label}"), ("cell", "--arch")):
        (tmp_path / "arch.json").write_text(json.dumps(bad))
        code, _, err = run_nds(["export", "--checkpoint", ckpt, "--arch", tmp_path / "arch.json", "--out",
                                tmp_path / "e"])
        assert_one_line(err, code, 2, expected)
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "e").exists()


def test_plot_refuses_wrong_typed_results_and_keeps_earlier_figures(finished_run: Path, tmp_path: Path) -> None:
    results = json.loads((finished_run / "results.json").read_text())
    figures = tmp_path / "figs"
    figures.mkdir()
    (figures / "predicted_vs_true.png").write_bytes(b"an earlier figure")
    before = snapshot(figures)
    cases = [
        ({**results, "training": "abc"}, "training is a str"),
        ({**results, "training": {"history": [{"epoch": "one"}]}}, "training.history"),
        ({**results, "search": [1, 2]}, "search is a list"),
        ({**results, "ranking": {"kendall_tau": "x", "predictions": []}}, "ranking.predictions"),
        ({**results, "diagnostics": {"epochs": "x"}}, "wrong type"),
        ({"summary": [{"strategy": 1}], "runs": []}, "summary[0]"),
        ({"summary": "x", "runs": []}, "summary is a str"),
        ({"summary": [], "runs": [{"results": 5}]}, "runs[0].results"),
        ({"summary": [], "runs": [{"results": str(tmp_path / "gone.json")}]}, "no such file"),
        ({"summary": [], "runs": [], "noise_ceiling": "high"}, "noise_ceiling"),
        ([1, 2], "neither a results.json"),
    ]
    for data, expected in cases:
        (tmp_path / "r.json").write_text(json.dumps(data))
        code, stdout, err = run_nds(["plot", tmp_path / "r.json", "--out", figures])
        assert_one_line(err, code, 2, "RESULTS", expected)
        assert snapshot(figures) == before
    assert_nothing_half_written(figures)


def test_rescore_refuses_truncated_and_wrong_typed_compare_files(tmp_path: Path) -> None:
    from ..bench.tiny_compare import tiny_table
    table = tiny_table(tmp_path / "gt.json")
    cmp_dir = tmp_path / "cmp"
    cmp_dir.mkdir()
    for text, expected in (('{"runs": [{"strategy": "spos", "se', "may be truncated"),
                           (json.dumps({"runs": "x"}), "holds no list of runs"),
                           (json.dumps({"runs": [{"strategy": "spos", "seed": "0", "results": "r.json"}]}),
                            "run 0 is not a compare row"),
                           (json.dumps([1]), "holds no list of runs")):
        (cmp_dir / "compare.json").write_text(text)
        out = tmp_path / "rescored"
        code, _, err = run_nds(["bench", "rescore", cmp_dir, "--table", table, "--out", out])
        assert_one_line(err, code, 2, "RUNS", expected)
        assert not out.exists()
    row_dir = tmp_path / "row"
    row_dir.mkdir()
    (row_dir / "bench_row.json").write_text('{"job": {}, "row": {"strategy": "spos", "seed": 0, "resu')
    code, _, err = run_nds(["bench", "rescore", row_dir, "--table", table, "--out", tmp_path / "rescored"])
    assert_one_line(err, code, 2, "RUNS", "may be truncated")


@pytest.mark.parametrize("argv, expected", [
    (["--recipes", "spos", "spos"], "--recipes"),
    (["--recipes", "spos", "fairnas", "--seeds", "0", "0"], "--seeds"),
], ids=["recipes", "seeds"])
def test_bench_compare_refuses_duplicates_before_training(argv: list, expected: str, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code, _, err = run_nds(["bench", "compare", *argv, "--out", out])
    assert_one_line(err, code, 2, expected, "more than once")
    assert not out.exists()


def test_results_json_is_strict_with_a_reason_for_an_undefined_default(config: Path, tmp_path: Path) -> None:
    from nni_dynamic_supernet.pipeline import final_metrics
    out = tmp_path / "run"
    code, stdout, err = run_nds(["train", "--config", config, "--out", out, "--skip-search"])
    assert code == 0, err
    text = (out / "results.json").read_text()
    results = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in results.json: not JSON"))
    assert results["default"] is None and "no search ran" in results["default_missing"]
    json.loads(stdout.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(f"{c} printed"))
    final = final_metrics(results)  # what nnictl gets: a number, and the reason beside it
    assert final["default"] == 0.0 and isinstance(final["default"], float) and final["default_missing"]
    run = json.loads((out / "run.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert run["recipe"] == results["recipe"]


def test_an_unreadable_ground_truth_path_in_a_recipe_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "gt.json").write_text('{"format": "nds-ground-truth/1", "entr')
    config = write_recipe(tmp_path / "c.yaml", ranking={"ground_truth": str(tmp_path / "gt.json")})
    code, _, err = run_nds(["train", "--config", config, "--out", tmp_path / "out"])
    assert_one_line(err, code, 2, "ranking.ground_truth")
    assert not (tmp_path / "out").exists()
    assert_nothing_half_written(tmp_path)
    assert tiny_recipe()  # the helper stays importable for the suite's other modules
