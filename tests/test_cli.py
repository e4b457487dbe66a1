"""The ``nds`` command as a user runs it: train, evaluate, rank, search, export, and its errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from nni_dynamic_supernet.cli import main
from nni_dynamic_supernet.ranking import GroundTruth
from nni_dynamic_supernet.registry import create_space

torch.set_num_threads(1)

TINY = {
    "strategy": "fsnas_calr_ms", "seed": 0,
    "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
    "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
    "training": {"epochs": 1, "max_steps_per_epoch": 3, "num_threads": 1},
    "search": {"searcher": "evolution", "max_evaluations": 8, "population": 4, "generations": 3, "select_num": 2,
               "mutation_num": 2, "crossover_num": 2, "bn_batches": 1},
    "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 2},
    "output": {"tensorboard": False},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nds")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["train", "--config", str(root / "tiny.yaml"), "--out", str(root / "run")]) == 0
    return root


def test_train_writes_results_with_checkpoint_path(trained: Path) -> None:
    results = json.loads((trained / "run" / "results.json").read_text())
    assert Path(results["checkpoint"]).is_file()
    assert json.loads((trained / "run" / "best_arch.json").read_text()) == results["best_arch"]
    assert len(results["partition"]) == 5  # fsnas splits the first label into its five ops


def test_evaluate_predicts_every_arch_deterministically(trained: Path) -> None:
    results = json.loads((trained / "run" / "results.json").read_text())
    archs = [r["arch"] for r in results["search"]["top"]]
    (trained / "archs.json").write_text(json.dumps(archs))
    outs = []
    for name in ("p1.json", "p2.json"):
        assert main(["evaluate", "--checkpoint", results["checkpoint"], "--archs", str(trained / "archs.json"),
                     "--out", str(trained / name)]) == 0
        outs.append(json.loads((trained / name).read_text()))
    assert outs[0] == outs[1]
    assert [p["arch"] for p in outs[0]] == archs
    # The search's own scores come from the same evaluator, so they agree.
    assert [p["predicted_accuracy"] for p in outs[0]] == [r["accuracy"] for r in results["search"]["top"]]


def test_rank_reports_tau_against_a_table(trained: Path, capsys: pytest.CaptureFixture) -> None:
    preds = json.loads((trained / "p1.json").read_text()) if (trained / "p1.json").exists() else None
    if preds is None:
        pytest.skip("needs test_evaluate first")
    truth = GroundTruth.from_pairs([p["arch"] for p in preds], [float(i) for i in range(len(preds))],
                                   space="nas_bench_201", space_kwargs={}, dataset="digits_hard",
                                   metric="test_accuracy", recipe={}, seeds=[0])
    truth.save(trained / "gt.json")
    assert main(["rank", "--predictions", str(trained / "p1.json"), "--ground-truth", str(trained / "gt.json"),
                 "--out", str(trained / "rank.json")]) == 0
    report = json.loads((trained / "rank.json").read_text())
    assert -1.0 <= report["kendall_tau"] <= 1.0 and report["n"] == len(preds)


def test_export_loads_strictly_into_a_fresh_frozen_space(trained: Path) -> None:
    results = json.loads((trained / "run" / "results.json").read_text())
    assert main(["export", "--checkpoint", results["checkpoint"], "--arch", str(trained / "run" / "best_arch.json"),
                 "--out", str(trained / "export")]) == 0
    meta = json.loads((trained / "export" / "arch.json").read_text())
    space = create_space("nas_bench_201", **{**meta["space_kwargs"], "num_classes": 10, "input_size": 8})
    model = space.freeze(meta["arch"])
    model.load_state_dict(torch.load(trained / "export" / "weights.pt", weights_only=True))
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_search_again_on_the_checkpoint(trained: Path) -> None:
    results = json.loads((trained / "run" / "results.json").read_text())
    assert main(["search", "--checkpoint", results["checkpoint"], "--out", str(trained / "s2"),
                 "--searcher", "random", "--set", "search.max_evaluations=3"]) == 0
    found = json.loads((trained / "s2" / "search.json").read_text())
    assert found["evaluations"] == 3 and found["searcher"] == "random"


def test_shifted_search_on_a_partitioned_checkpoint_then_evaluate(trained: Path) -> None:
    # fsnas_calr_ms: several sub-supernets, so every candidate is routed to its leaf to be shifted.
    results = json.loads((trained / "run" / "results.json").read_text())
    out = trained / "shift"
    assert main(["search", "--checkpoint", results["checkpoint"], "--out", str(out), "--searcher",
                 "shifted_evolution", "--set", "search.shift_iters=1", "--set", "search.shift_batch_size=16",
                 "--set", "search.shift_lr=0.01", "--set", "search.shift_final_reevaluate=2"]) == 0
    found = json.loads((out / "search.json").read_text())
    assert found["searcher"] == "shifted_evolution" and found["evaluations"] <= 8
    assert found["diagnostics"]["shift"]["candidates_trained"] > 0
    archs = out / "archs.json"
    archs.write_text(json.dumps([found["top"][0]["arch"]]))
    assert main(["evaluate", "--checkpoint", found["shifted_checkpoint"], "--archs", str(archs),
                 "--out", str(out / "pred.json")]) == 0
    pred = json.loads((out / "pred.json").read_text())
    assert pred[0]["predicted_accuracy"] == pytest.approx(found["top"][0]["accuracy"])  # scored on the final weights


def test_plot_redraws_every_figure_the_results_hold(trained: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["plot", str(trained / "run" / "results.json"), "--out", str(trained / "plots")]) == 0
    written = capsys.readouterr().out.split()
    names = {Path(p).name for p in written}
    # fsnas_calr_ms: CaLR LR curves; no ground truth, so no prediction scatter.
    assert "lr_by_complexity.png" in names and "predicted_vs_true.png" not in names
    assert names == {p.name for p in (trained / "run").glob("*.png")}  # the same figures the run drew
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_plot_draws_the_compare_chart(tmp_path: Path) -> None:
    results = {"strategy": "spos", "seed": 0, "ranking": {"kendall_tau": 0.5, "predictions": [
        {"predicted_accuracy": 50.0, "true_accuracy": 60.0}, {"predicted_accuracy": 55.0, "true_accuracy": 70.0}]}}
    compare = {"summary": [{"strategy": "spos", "kendall_tau": 0.5, "kendall_tau_std": 0.1}],
               "runs": [{"results": results}], "noise_ceiling": {"kendall_tau": 0.8}}
    (tmp_path / "compare.json").write_text(json.dumps(compare))
    assert main(["plot", str(tmp_path / "compare.json")]) == 0
    assert (tmp_path / "compare_tau.png").is_file() and (tmp_path / "compare_scatter.png").is_file()


def test_plot_refuses_other_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "x.json").write_text("[1, 2]")
    assert main(["plot", str(tmp_path / "x.json")]) == 2
    assert "RESULTS" in capsys.readouterr().err


@pytest.mark.parametrize("argv, field", [
    (["train", "--config", "missing.yaml", "--out", "{tmp}/o"], "--config"),
    (["train", "--out", "{tmp}/o", "--set", "strategy=nope"], "strategy"),
    (["train", "--out", "{tmp}/o", "--set", "training.lr=-1"], "training.lr"),
    (["train", "--out", "{tmp}/o", "--set", "space.name=nope"], "space.name"),
    (["evaluate", "--checkpoint", "{tmp}/none.pt", "--archs", "{tmp}/a.json", "--out", "{tmp}/p.json"],
     "--archs"),
    (["search", "--checkpoint", "{tmp}/none.pt", "--out", "{tmp}/o"], "--checkpoint"),
    (["rank", "--predictions", "{tmp}/none.json", "--ground-truth", "{tmp}/gt.json"], "--predictions"),
])
def test_bad_input_is_one_line_naming_the_field(argv: list, field: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and err[0].startswith("nds: error:")
    assert not (tmp_path / "o" / "results.json").exists()


def test_corrupt_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "a.json").write_text("[]")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt"), "--archs", str(tmp_path / "a.json"),
                 "--out", str(tmp_path / "p.json")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_the_argument_parser_does_not_load_torch() -> None:
    """``nds --help`` and a bad argument answer in a fraction of a second: no torch import on that path."""
    import subprocess
    import sys
    code = ("import sys; from nni_dynamic_supernet.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
