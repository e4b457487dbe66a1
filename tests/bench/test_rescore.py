"""``nds bench rescore``: finished compare runs ranked again against another table, without training."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nni_dynamic_supernet.bench.compare import compare_recipes
from nni_dynamic_supernet.bench.rescore import collect_rows, rescore_runs
from nni_dynamic_supernet.cli import main
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking import GroundTruth

from .tiny_compare import tiny_config

RANKED = ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5", "spearman_top10", "spearman_top20", "cb",
          "rho_cc", "top1_true_accuracy", "noise_ceiling")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two compares of two seeds each, in two folders (spos in one, fairnas in the other)."""
    root = tmp_path_factory.mktemp("rescore")
    config = tiny_config(root)
    for name in ("spos", "fairnas"):
        compare_recipes([name], [0, 1], config=str(config), out_dir=root / name, plots=False)
    return root


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN-safe


def test_rescore_against_the_same_table_reproduces_every_row(finished: Path, tmp_path: Path) -> None:
    out = rescore_runs([finished / "spos", finished / "fairnas"], finished / "gt.json", out_dir=tmp_path,
                       pairs=[("fairnas", "spos")], plots=True)
    original = collect_rows([finished / "spos", finished / "fairnas"])
    assert [(r["strategy"], r["seed"]) for r in out["runs"]] == [("spos", 0), ("spos", 1), ("fairnas", 0), ("fairnas", 1)]
    for old, new in zip(original, out["runs"]):
        assert all(_same(old[k], new[k]) for k in RANKED), (old["strategy"], old["seed"])
        assert new["rescored_from"] == old["results"] and Path(new["results"]).is_file()
    (pair,) = out["pairs"]
    assert (pair["technique"], pair["baseline"], pair["n"]) == ("fairnas", "spos", 2)
    for name in ("rescore.json", "rescore.md", "rescore_tau.png", "rescore_scatter.png"):
        assert (tmp_path / name).is_file()


def test_rescore_against_a_reversed_table_negates_tau(finished: Path, tmp_path: Path) -> None:
    table = GroundTruth.load(finished / "gt.json")
    for entry in table.entries:  # the same archs, ranked the other way round
        entry["accuracy"] = 100.0 - entry["accuracy"]
        entry["per_seed"] = {s: 100.0 - v for s, v in entry["per_seed"].items()}
    table.save(tmp_path / "reversed.json")
    out = rescore_runs([finished / "spos"], tmp_path / "reversed.json", out_dir=tmp_path / "out", plots=False)
    for old, new in zip(collect_rows([finished / "spos"]), out["runs"]):
        assert new["kendall_tau"] == pytest.approx(-old["kendall_tau"])
        assert new["noise_ceiling"]["kendall_tau"] == pytest.approx(old["noise_ceiling"]["kendall_tau"])
        saved = json.loads(Path(new["results"]).read_text())["ranking"]["predictions"]
        assert {p["true_accuracy"] for p in saved} == {e["accuracy"] for e in table.entries}
        assert not math.isnan(new["spearman"])


def test_rescore_refuses_a_table_with_unpredicted_archs(finished: Path, tmp_path: Path) -> None:
    table = GroundTruth.load(finished / "gt.json")
    table.entries.append({**table.entries[0], "arch": {**table.entries[0]["arch"], "cell/0_1": "none",
                                                      "cell/0_2": "none", "cell/1_2": "none"}})
    assert len({json.dumps(e["arch"], sort_keys=True) for e in table.entries}) == len(table.entries)
    table.save(tmp_path / "bigger.json")
    with pytest.raises(ConfigError, match="--table.*did not predict"):
        rescore_runs([finished / "spos"], GroundTruth.load(tmp_path / "bigger.json").source, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_rescore_finds_the_runs_of_a_moved_compare(finished: Path, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(finished / "fairnas", moved)
    recorded = collect_rows([finished / "fairnas"])
    found = collect_rows([moved])
    assert [Path(r["results"]) for r in found] == [moved / "fairnas" / f"seed{s}" / "results.json" for s in (0, 1)]
    assert [r["results"] for r in recorded] != [r["results"] for r in found]
    (single,) = collect_rows([moved / "fairnas" / "seed1"])
    assert Path(single["results"]) == moved / "fairnas" / "seed1" / "results.json"


def test_rescore_refuses_ambiguous_or_missing_runs(finished: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spos seed 0 is also in"):
        collect_rows([finished / "spos", finished / "spos" / "spos" / "seed0"])
    with pytest.raises(ConfigError, match="neither compare.json"):
        collect_rows([tmp_path])


def test_cli_rescore(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "rescore", str(finished / "spos"), str(finished / "fairnas"), "--table",
                 str(finished / "gt.json"), "--out", str(tmp_path / "out"), "--pairs", "fairnas:spos"]) == 0
    assert "fairnas vs spos" in capsys.readouterr().out and (tmp_path / "out" / "rescore.md").is_file()
    assert main(["bench", "rescore", str(tmp_path / "nowhere"), "--table", "v1", "--out", str(tmp_path / "o2")]) == 2
    assert "RUNS" in capsys.readouterr().err
    assert main(["bench", "rescore", str(finished / "spos"), "--table", "v9", "--out", str(tmp_path / "o3")]) == 2
    assert "--table" in capsys.readouterr().err
