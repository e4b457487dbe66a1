"""Result figures: drawn when the results hold their data, skipped (None) otherwise."""
from __future__ import annotations

from pathlib import Path

from nni_dynamic_supernet.plots import RESULT_PLOTS, plot_lr_by_complexity, plot_results


def _results(lrs: dict) -> dict:
    curves = {"steps": [0, 5, 10]}
    for i, (name, lr) in enumerate(lrs.items()):
        curves[name] = {"arch": {}, "lr": lr, "complexity": 1000.0 * (i + 1), "gamma": 2.0 - i}
    return {"strategy": "spos_calr", "seed": 0, "recipe": {"training": {"complexity_metric": "params"}},
            "training": {"history": []},
            "diagnostics": {"lr_curves": curves, "gamma": {"counts": [3, 1], "edges": [0.5, 1.0, 1.5], "mean": 0.9}}}


def test_lr_curves_are_drawn_for_calr(tmp_path: Path) -> None:
    res = _results({"smallest": [0.1, 0.02, 0.0], "largest": [0.1, 0.06, 0.01]})
    path = plot_lr_by_complexity(res, tmp_path / "lr.png")
    assert path is not None and path.stat().st_size > 5_000


def test_static_lr_has_no_lr_figure(tmp_path: Path) -> None:
    res = _results({"smallest": [0.1, 0.05, 0.0], "largest": [0.1, 0.05, 0.0]})
    assert plot_lr_by_complexity(res, tmp_path / "lr.png") is None
    assert not (tmp_path / "lr.png").exists()


def test_plot_results_writes_only_what_the_results_hold(tmp_path: Path) -> None:
    res = _results({"smallest": [0.1, 0.02, 0.0], "largest": [0.1, 0.06, 0.01]})
    written = plot_results(res, tmp_path)
    assert "lr_by_complexity" in RESULT_PLOTS
    assert [p.name for p in written] == ["lr_by_complexity.png"]
