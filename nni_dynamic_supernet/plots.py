"""Figures drawn from results.json files and comparison tables (matplotlib, PNG).

Every figure has axis labels with units, a title and a legend where several series
share the axes. Functions take plain data (dicts from results.json) and a path, and
write the PNG atomically.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .atomic_io import atomic_write_bytes  # noqa: E402

__all__ = ["plot_compare", "plot_prediction_scatter", "plot_predicted_vs_true", "plot_sampling_diagnostics",
           "plot_partition_tree", "plot_lr_by_complexity", "save_figure", "RESULT_PLOTS", "result_plot", "plot_results"]

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


#: Rankers without training drawn on the compare chart, and their line styles.
_BASELINE_LINES = {"params": ("tab:green", "-."), "synflow": ("tab:purple", "-."), "nwot": ("tab:olive", ":")}


def plot_compare(summary: Sequence[dict], path: Path, noise: Optional[dict] = None,
                 baselines: Optional[dict] = None) -> Path:
    """Bar chart of Kendall tau per recipe (mean ± SD over seeds), with the noise ceiling and the rankers without
    training (``baselines``: a compare's ``baselines``, e.g. the parameter count) as lines."""
    names = [s["strategy"] for s in summary]
    means = [_num(s["kendall_tau"]) for s in summary]
    stds = [_num(s["kendall_tau_std"]) for s in summary]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4))
    ax.bar(range(len(names)), means, yerr=stds, capsize=4, color="tab:blue", label="supernet ranking (mean ± SD)")
    if noise is not None:
        ax.axhline(_num(noise["kendall_tau"]), color="tab:red", linestyle="--", label="noise ceiling (seed vs seed)")
        perfect = _num(noise.get("kendall_tau_truth_vs_mean"))
        if not math.isnan(perfect):
            ax.axhline(perfect, color="tab:red", linestyle=":", label="perfect ranker vs seed mean (model)")
    for name, (color, style) in _BASELINE_LINES.items():
        tau = _num((baselines or {}).get(name, {}).get("kendall_tau"))
        if not math.isnan(tau):
            ax.axhline(tau, color=color, linestyle=style, label=f"{name} (no training)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("Kendall tau vs stand-alone accuracy")
    ax.set_xlabel("recipe")
    ax.set_title("Ranking quality per recipe", pad=24)
    # Above the axes: inside, the legend covered the bars of the last recipes.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return save_figure(fig, path)


def _num(value: Any) -> float:
    """A number read from JSON, where strict JSON writes an undefined one (NaN) as null."""
    return math.nan if value is None else float(value)


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
        ax.scatter([_num(p["true_accuracy"]) for p in preds], [_num(p["predicted_accuracy"]) for p in preds], s=8,
                   alpha=0.7, label=f"{len(preds)} subnets")
        ax.set_title(f"{name} (seed {res['seed']}): Kendall tau={_num(res['ranking']['kendall_tau']):.3f}", fontsize=9)
        ax.set_xlabel("stand-alone test accuracy (%)")
        ax.set_ylabel("supernet val accuracy (%)")
        ceiling = (res["ranking"].get("noise_ceiling") or {}).get("kendall_tau")
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


def _search_diagnostics(results: Any) -> dict:
    return _load(results).get("search", {}).get("diagnostics", {}) or {}


@result_plot("evolution_progress")
def plot_evolution_progress(results: Any, path: Path) -> Optional[Path]:
    """Best, mean and every candidate's supernet accuracy per generation (``None`` for a non-generational search)."""
    res = _load(results)
    gens = _search_diagnostics(res).get("generations") or []
    if not gens:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for row in gens:
        pop = row.get("population", [])
        ax.scatter([row["generation"]] * len(pop), pop, s=8, alpha=0.35, color="tab:gray")
    ax.scatter([], [], s=8, color="tab:gray", label="candidates of the generation")
    ax.plot([r["generation"] for r in gens], [r["best"] for r in gens], marker="o", label="best so far")
    ax.plot([r["generation"] for r in gens], [r["mean"] for r in gens], marker=".", label="generation mean")
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("supernet val accuracy (%)")
    ax.set_title(f"{res.get('search', {}).get('searcher', 'search')}: progress per generation")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


@result_plot("tracked_archs")
def plot_tracked_archs(results: Any, path: Path) -> Optional[Path]:
    """Supernet error of fixed top and random architectures across generations (Supernet Shifting Fig. 3)."""
    tracked = _search_diagnostics(results).get("tracked")
    if not tracked or not tracked.get("archs"):
        return None
    gens = tracked["generations"]
    panels = 2 if tracked.get("top_kendall_tau") else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    colors = {"top": "tab:green", "random": "tab:gray"}
    for group in ("top", "random"):
        rows = [a for a in tracked["archs"] if a.get("group") == group]
        for i, row in enumerate(rows):
            ax.plot(gens, row["error"], color=colors[group], alpha=0.8, marker=".",
                    label=f"{group} architectures" if i == 0 else None)
    ax.set_xlabel("generation (-1: before the search)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("supernet val error (%)")
    ax.set_title("Tracked architectures")
    ax.legend(fontsize=7)
    if panels == 2:
        ax = axes[0, 1]
        ax.plot(gens, tracked["top_kendall_tau"], marker="o", color="tab:green", label="top architectures")
        ax.set_xlabel("generation (-1: before the search)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel("Kendall tau vs stand-alone accuracy")
        ax.set_title("Local ranking among the top")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


@result_plot("pareto_front")
def plot_pareto_front(results: Any, path: Path) -> Optional[Path]:
    """NSGA-II: every evaluated architecture and the Pareto front, accuracy against the first cost objective."""
    res = _load(results)
    diag = _search_diagnostics(res)
    front = diag.get("pareto_front")
    if not front:
        return None
    cost = [o for o in diag.get("objectives", ["accuracy", "params"]) if o != "accuracy"][0]
    evaluated = diag.get("evaluated") or []
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    pts = [r for r in evaluated if cost in r]
    ax.scatter([r[cost] for r in pts], [r["accuracy"] for r in pts], s=10, alpha=0.4, color="tab:gray",
               label="evaluated architectures")
    ax.step([r[cost] for r in front], [r["accuracy"] for r in front], where="post", color="tab:red", marker="o",
            label=f"Pareto front ({len(front)})")
    ax.set_xlabel("parameters (count)" if cost == "params" else "FLOPs (multiply-adds)")
    ax.set_ylabel("supernet val accuracy (%)")
    ax.set_title("NSGA-II: accuracy vs " + cost)
    ax.legend(fontsize=7)
@result_plot("partition_tree")
def plot_partition_tree(results: Any, path: Path) -> Optional[Path]:
    """The sub-supernet tree of a few-shot / GM-NAS run (``None`` for a single supernet).

    Left: the tree, one box per node (root, each split's label, cut cost and epoch; leaves
    with their slot and restricted labels), edges labelled with the group each child keeps.
    Right: the similarity matrix (mean gradient cosine) of the first scored split.
    """
    res = _load(results)
    tree = res.get("partition_tree") or {}
    nodes = tree.get("nodes") or []
    if len(nodes) < 2:
        return None
    depth = {nodes[0]["id"]: 0}
    for node in nodes[1:]:
        depth[node["id"]] = depth[node["parent"]] + 1
    # Leaves get x positions left to right; an inner node sits above the middle of its children.
    x: dict[int, float] = {}
    order = [n for n in nodes if not n["children"]]
    by_id = {n["id"]: n for n in nodes}

    def place(node_id: int) -> float:
        node = by_id[node_id]
        if not node["children"]:
            return x.setdefault(node_id, float(len([k for k in x if not by_id[k]["children"]])))
        xs = [place(c) for c in node["children"]]
        x[node_id] = sum(xs) / len(xs)
        return x[node_id]

    place(nodes[0]["id"])
    scored = [n for n in nodes if n.get("split") and n["split"].get("similarity")]
    cols = 2 if scored else 1
    width = max(6.0, 2.8 * len(order))
    fig, axes = plt.subplots(1, cols, figsize=(width + (4.0 if scored else 0.0), 1.6 + 1.5 * max(depth.values())),
                             squeeze=False, gridspec_kw={"width_ratios": [width, 4.0] if scored else [1]})
    ax = axes[0, 0]
    max_depth = max(depth.values())
    for node in nodes:
        nx, ny = x[node["id"]], max_depth - depth[node["id"]]
        for child in node["children"]:
            cx, cy = x[child], max_depth - depth[child]
            ax.plot([nx, cx], [ny, cy], color="0.5", zorder=1)
            label = node["split"]["label"]
            group = by_id[child]["mask"].get(label, [])
            ax.text((nx + cx) / 2, (ny + cy) / 2, "/".join(map(str, group)), fontsize=6, ha="center",
                    color="tab:blue", bbox=dict(boxstyle="round", fc="white", ec="none", alpha=0.8))
        split = node.get("split")
        if split:
            cost = split.get("cut_cost")
            text = f"split {split['label']}\nafter epoch {split['epoch']}"
            if cost is not None:
                text += f"\ncut cost {cost:.3f}"
            color = "lightyellow"
        else:
            text = f"leaf {node['slot']}\n" + "\n".join(f"{k}: {'/'.join(map(str, v))}" for k, v in node["mask"].items())
            color = "honeydew"
        ax.text(nx, ny, text, fontsize=6, ha="center", va="center", zorder=2,
                bbox=dict(boxstyle="round", fc=color, ec="0.4"))
    ax.set_xlim(-0.7, max(x.values()) + 0.7)
    ax.set_ylim(-0.7, max_depth + 0.7)
    ax.set_xlabel("sub-supernets (leaves, left to right by slot order of creation)")
    ax.set_ylabel("tree level (0 = leaves)")
    ax.set_xticks([])
    ax.set_yticks(range(max_depth + 1))
    ax.set_title(f"Partition tree: {len(order)} sub-supernets")
    if scored:
        first = scored[0]["split"]
        sim = np.array(first["similarity"])
        ax2 = axes[0, 1]
        im = ax2.imshow(sim, vmin=-1, vmax=1, cmap="RdBu")
        names = [str(c) for c in first.get("choices", range(len(sim)))]
        ax2.set_xticks(range(len(names)))
        ax2.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax2.set_yticks(range(len(names)))
        ax2.set_yticklabels(names, fontsize=7)
        ax2.set_xlabel("choice")
        ax2.set_ylabel("choice")
        ax2.set_title(f"gradient cosine on {first['label']} (split 1)", fontsize=9)
        fig.colorbar(im, ax=ax2, label="mean cosine similarity (unitless)")
    fig.suptitle(f"{res.get('strategy', '')} (seed {res.get('seed', '')})", fontsize=9)
    return save_figure(fig, path)
