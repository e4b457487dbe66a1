"""Figures drawn from results.json files and comparison tables (matplotlib, PNG).

Every figure has axis labels with units, a title and a legend where several series
share the axes. Functions take plain data (dicts from results.json) and a path, and
write the PNG atomically.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .atomic_io import atomic_write_bytes  # noqa: E402

__all__ = ["plot_compare", "plot_prediction_scatter", "plot_predicted_vs_true", "save_figure"]


def save_figure(fig: Any, path: Path) -> Path:
    """Render ``fig`` to PNG and write it atomically; closes the figure."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def plot_compare(summary: Sequence[dict], path: Path, noise: Optional[dict] = None) -> Path:
    """Bar chart of Kendall tau per recipe (mean ± std over seeds), with the noise ceiling as a line."""
    names = [s["strategy"] for s in summary]
    means = [s["kendall_tau"] for s in summary]
    stds = [s["kendall_tau_std"] for s in summary]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4))
    ax.bar(range(len(names)), means, yerr=stds, capsize=4, color="tab:blue", label="supernet ranking (mean ± std)")
    if noise is not None:
        ax.axhline(noise["kendall_tau"], color="tab:red", linestyle="--", label="noise ceiling (seed vs seed)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("Kendall tau vs stand-alone accuracy")
    ax.set_xlabel("recipe")
    ax.set_title("Ranking quality per recipe")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def _load(results: Any) -> dict:
    if isinstance(results, (str, Path)):
        return json.loads(Path(results).read_text())
    return results


def plot_prediction_scatter(results_files: Sequence[Any], path: Path) -> Path:
    """Predicted vs stand-alone accuracy, one panel per recipe (first seed of each)."""
    by_strategy: dict[str, dict] = {}
    for item in results_files:
        res = _load(item)
        by_strategy.setdefault(res["strategy"], res)
    n = max(1, len(by_strategy))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, res) in zip(axes.flat, by_strategy.items()):
        preds = res["ranking"]["predictions"]
        ax.scatter([p["true_accuracy"] for p in preds], [p["predicted_accuracy"] for p in preds], s=8, alpha=0.7)
        ax.set_title(f"{name} (seed {res['seed']}): tau={res['ranking']['kendall_tau']:.3f}", fontsize=9)
        ax.set_xlabel("stand-alone test accuracy (%)")
        ax.set_ylabel("supernet val accuracy (%)")
    return save_figure(fig, path)


def plot_predicted_vs_true(results: Any, path: Path) -> Path:
    """Predicted vs stand-alone accuracy of one run, with Kendall tau in the title."""
    return plot_prediction_scatter([results], path)
