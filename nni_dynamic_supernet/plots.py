"""Figures drawn from results.json files and comparison tables (matplotlib, PNG).

Every figure has axis labels with units, a title and a legend where several series
share the axes. Functions take plain data (dicts from results.json) and a path, and
write the PNG atomically.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .atomic_io import atomic_write_bytes  # noqa: E402

__all__ = ["plot_compare", "plot_prediction_scatter", "plot_predicted_vs_true", "plot_sampling_diagnostics",
           "plot_lr_by_complexity", "save_figure", "RESULT_PLOTS", "result_plot", "plot_results"]

#: Figures drawn from one run's results.json: file stem -> ``fn(results, path) -> path or None``.
#: A plotter returns ``None`` when the run holds nothing for it (a run without PA has no PA plot).
RESULT_PLOTS: dict[str, Callable[[dict, Path], Optional[Path]]] = {}


def result_plot(stem: str) -> Callable[[Callable[[dict, Path], Optional[Path]]], Callable[[dict, Path], Optional[Path]]]:
    """Register a plotter of one run's results under ``stem`` (the PNG is ``<stem>.png``)."""
    def register(fn: Callable[[dict, Path], Optional[Path]]) -> Callable[[dict, Path], Optional[Path]]:
        RESULT_PLOTS[stem] = fn
        return fn
    return register


def plot_results(results: Any, out_dir: Path) -> list[Path]:
    """Every registered figure that ``results`` (a dict or a results.json path) has data for, into ``out_dir``."""
    res = _load(results)
    written = []
    for stem, fn in RESULT_PLOTS.items():
        path = fn(res, Path(out_dir) / f"{stem}.png")
        if path is not None:
            written.append(path)
    return written


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
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows) if n > 1 else (4.6, 4.0), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, res) in zip(axes.flat, by_strategy.items()):
        preds = res["ranking"]["predictions"]
        ax.scatter([p["true_accuracy"] for p in preds], [p["predicted_accuracy"] for p in preds], s=8, alpha=0.7,
                   label=f"{len(preds)} subnets")
        ax.set_title(f"{name} (seed {res['seed']}): Kendall tau={res['ranking']['kendall_tau']:.3f}", fontsize=9)
        ax.set_xlabel("stand-alone test accuracy (%)")
        ax.set_ylabel("supernet val accuracy (%)")
        ceiling = res["ranking"].get("noise_ceiling", {}).get("kendall_tau")
        if ceiling is not None:
            ax.plot([], [], " ", label=f"noise ceiling tau={ceiling:.3f}")  # a legend line, no data
        ax.legend(fontsize=7, loc="upper left")
    if n == 1:
        fig.suptitle("Supernet prediction vs stand-alone accuracy", fontsize=10)
    return save_figure(fig, path)


@result_plot("predicted_vs_true")
def plot_predicted_vs_true(results: Any, path: Path) -> Optional[Path]:
    """Predicted vs stand-alone accuracy of one run, with Kendall tau in the title (``None`` without a ranking)."""
    if "ranking" not in _load(results):
        return None
    return plot_prediction_scatter([results], path)


@result_plot("sampling_diagnostics")
def plot_sampling_diagnostics(results: Any, path: Path) -> Optional[Path]:
    """PA&DA diagnostics of one run, one panel each when present; ``None`` when there is nothing to plot.

    * per-op sampling probability per epoch (PA; averaged over the labels offering the op);
    * entropy of the data distribution relative to uniform (DA);
    * supernet gradient variance per epoch (diagnostics; PA&DA Fig. 4).
    """
    res = _load(results)
    history = res.get("training", {}).get("history", [])
    epochs = [row["epoch"] for row in history]
    ops = sorted({k.split("/", 1)[1] for row in history for k in row if k.startswith("pa_prob/")})
    panels = []
    if ops:
        panels.append("paths")
    if any("da_entropy_ratio" in row for row in history):
        panels.append("data")
    gv = [(row["epoch"], row["grad_variance"]) for row in res.get("diagnostics", {}).get("epochs", [])
          if isinstance(row.get("grad_variance"), (int, float)) and row["grad_variance"] > 0]  # NaN fails > 0
    if gv:
        panels.append("variance")
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        if panel == "paths":
            for op in ops:
                ax.plot(epochs, [row.get(f"pa_prob/{op}", float("nan")) for row in history], marker=".", label=op)
            ax.set_ylabel("sampling probability")
            ax.set_title("PA: op probabilities for the next epoch")
            ax.legend(fontsize=7)
        elif panel == "data":
            ax.plot(epochs, [row.get("da_entropy_ratio", float("nan")) for row in history], marker=".",
                    label="H(q) / log N")
            ax.set_ylabel("entropy relative to uniform")
            ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_title("DA: data distribution entropy")
            ax.legend(fontsize=7)
        else:
            ax.plot([e for e, _ in gv], [v for _, v in gv], marker=".", color="tab:red", label="supernet GV")
            ax.set_yscale("log")
            ax.set_ylabel("mean per-parameter gradient variance")
            ax.set_title("Gradient variance per epoch")
            ax.legend(fontsize=7)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{res.get('strategy', '')} (seed {res.get('seed', '')})", fontsize=9)
    return save_figure(fig, path)


@result_plot("lr_by_complexity")
def plot_lr_by_complexity(results: Any, path: Path) -> Optional[Path]:
    """CaLR: the LR schedule of the smallest, median and largest subnet, and the exponent of sampled subnets.

    ``None`` when the run has no LR curves or every subnet follows the same schedule
    (static LR): the figure exists to show how CaLR separates them.
    """
    res = _load(results)
    diagnostics = res.get("diagnostics", {})
    curves = diagnostics.get("lr_curves", {})
    steps = curves.get("steps")
    named = [(name, c) for name, c in curves.items() if name != "steps" and isinstance(c, dict) and c.get("lr")]
    if not steps or len(named) < 2 or all(c["lr"] == named[0][1]["lr"] for _, c in named):
        return None
    metric = res.get("recipe", {}).get("training", {}).get("complexity_metric", "params")
    unit = "FLOPs" if metric == "flops" else "parameters"
    gamma = diagnostics.get("gamma", {})
    panels = 2 if gamma.get("counts") else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    for name, curve in named:
        label = name
        if curve.get("complexity") is not None:
            label += f" ({curve['complexity']:,.0f} {unit}"
            label += f", γ={curve['gamma']:.2f})" if curve.get("gamma") is not None else ")"
        ax.plot(steps, curve["lr"], label=label)
    ax.set_xlabel("training step (batches)")
    ax.set_ylabel("learning rate")
    ax.set_title("LR schedule by subnet complexity")
    ax.legend(fontsize=7)
    if panels == 2:
        ax = axes[0, 1]
        edges = gamma["edges"]
        ax.bar(edges[:-1], gamma["counts"], width=[b - a for a, b in zip(edges[:-1], edges[1:])], align="edge",
               color="tab:purple", alpha=0.8, label=f"sampled subnets (mean γ={gamma['mean']:.2f})")
        ax.set_xlabel("CaLR exponent γ (larger: LR decays faster)")
        ax.set_ylabel("sampled subnets (count)")
        ax.set_title("Exponent of the subnets trained")
        ax.legend(fontsize=7)
    fig.suptitle(f"{res.get('strategy', '')} (seed {res.get('seed', '')}): complexity-aware LR", fontsize=9)
    return save_figure(fig, path)
