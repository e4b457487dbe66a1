"""``nds bench compare``: several recipes x several seeds at equal epochs, ranked against the table.

Each (recipe, seed) run trains a supernet on the embedded task and predicts the accuracy
of every architecture of the ground-truth table. The comparison table gives, per recipe,
Kendall tau mean ± std over seeds, Spearman, P@top5%, CB, rho_CC, the stand-alone accuracy
of the architecture the supernet ranks first among the table's (NAS-Bench-201's
"exhaustive ranking" top-1), and wall time, next to the table's noise ceiling.
Runs can go to several worker processes; each run is single-threaded, so results do not
depend on the number of workers.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..atomic_io import atomic_write_json, atomic_write_text
from ..errors import ConfigError

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["compare_recipes", "summarize", "format_table", "DEFAULT_RECIPE"]

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "_resources" / "embedded.yaml"
METRICS = ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5", "spearman_top10", "spearman_top20", "cb",
           "rho_cc", "top1_true_accuracy", "seconds")


def _run_one(job: dict) -> dict:
    """Train one (recipe, seed) and return its ranking summary (runs in a worker process)."""
    import torch

    from ..pipeline import run_recipe
    from ..recipe import load_recipe
    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    overrides = {**job["overrides"], "strategy": job["strategy"], "seed": job["seed"], "training.num_threads": 1,
                 "output.tensorboard": False}
    recipe = load_recipe(job["config"], overrides)
    if recipe.ranking.ground_truth is None:
        raise ConfigError("ranking.ground_truth", None, "bench compare needs a ground-truth table")
    out = Path(job["out"])
    started = time.monotonic()
    # The compare bar is the only bar: a training bar per run would interleave with it.
    results = run_recipe(recipe, out, skip_search=True, progress=False)
    seconds = time.monotonic() - started
    ranking = results.get("ranking")
    if ranking is None:
        raise ConfigError("ranking.ground_truth", recipe.ranking.ground_truth,
                          "no ground truth matched this run; use the embedded recipe or pass a table")
    preds = ranking["predictions"]
    top = max(preds, key=lambda p: p["predicted_accuracy"])
    row = {k: ranking.get(k) for k in ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5",
                                       "spearman_top10", "spearman_top20", "cb", "rho_cc")}
    row.update(strategy=job["strategy"], seed=job["seed"], seconds=seconds, top1_true_accuracy=top["true_accuracy"],
               noise_ceiling=ranking["noise_ceiling"], results=str(out / "results.json"))
    return row


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Aggregate per-run rows into one row per recipe: mean and std of each metric over seeds."""
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        summary: dict[str, Any] = {"strategy": strategy, "seeds": [r["seed"] for r in mine]}
        for key in METRICS:
            values = np.array([r[key] for r in mine if r.get(key) is not None], dtype=float)
            values = values[np.isfinite(values)]
            summary[key] = float(values.mean()) if len(values) else float("nan")
            summary[f"{key}_std"] = float(values.std(ddof=0)) if len(values) else float("nan")
        out.append(summary)
    return out


def format_table(summary: Sequence[dict], noise: Optional[dict] = None) -> str:
    """A Markdown table of :func:`summarize` rows, with the noise ceiling underneath."""
    head = ("| recipe | tau (mean ± std) | tau strat. | Spearman | P@top5% | Spearman top10% | Spearman top20% | CB |"
            " rho_CC | top-1 stand-alone acc | wall s/run |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]

    def pm(s: dict, key: str) -> str:
        return f"{s.get(key, float('nan')):.3f} ± {s.get(key + '_std', float('nan')):.3f}"

    for s in summary:
        lines.append(
            f"| {s['strategy']} | {pm(s, 'kendall_tau')} | {pm(s, 'kendall_tau_stratified')} | {pm(s, 'spearman')} | "
            f"{pm(s, 'p_at_top5')} | {pm(s, 'spearman_top10')} | {pm(s, 'spearman_top20')} | {s['cb']:.3f} | "
            f"{s['rho_cc']:.3f} | {s['top1_true_accuracy']:.2f} ± {s['top1_true_accuracy_std']:.2f} | "
            f"{s['seconds']:.0f} |")
    if noise:
        lines.append("")
        lines.append(f"Noise ceiling (seed vs seed of the ground truth): Kendall tau {noise['kendall_tau']:.3f} "
                     f"overall, {noise['kendall_tau_stratified']:.3f} on the stratified subset.")
    return "\n".join(lines)


def compare_recipes(strategies: Sequence[str], seeds: Sequence[int], config: Optional[str] = None,
                    out_dir: Path = Path("bench_compare"), overrides: Optional[dict] = None,
                    workers: int = 1, plots: bool = True) -> dict:
    """Run every strategy with every seed on the embedded task and compare their rankings.

    Parameters
    ----------
    strategies
        Registered strategy names.
    seeds
        Seeds per strategy.
    config
        Base recipe YAML (default: the packaged embedded recipe). All runs share its epochs.
    out_dir
        Where each run's results and ``compare.json`` / ``compare.md`` / plots go.
    overrides
        Dotted recipe keys applied to every run.
    workers
        Parallel worker processes.

    Returns
    -------
    dict
        ``{"runs": [...], "summary": [...], "noise_ceiling": {...}, "table": str}``.
    """
    from ..registry import get_preset
    for name in strategies:
        get_preset(name)  # unknown names fail before anything runs
    if workers < 1:
        raise ConfigError("--workers", workers, "must be >= 1")
    config = str(config or DEFAULT_RECIPE)
    out_dir = Path(out_dir)
    jobs = [{"strategy": s, "seed": int(seed), "config": config, "overrides": dict(overrides or {}),
             "out": str(out_dir / s / f"seed{seed}")} for s in strategies for seed in seeds]
    started = time.monotonic()
    rows: list[dict] = []
    if workers == 1:
        for job in _progress(jobs):
            rows.append(_run_one(job))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for row in _progress(pool.map(_run_one, jobs), total=len(jobs)):
                rows.append(row)
    summary = summarize(rows)
    noise = rows[0]["noise_ceiling"] if rows else None
    table = format_table(summary, noise)
    payload = {"runs": rows, "summary": summary, "noise_ceiling": noise, "table": table,
               "wall_seconds": time.monotonic() - started, "workers": workers, "config": config,
               "overrides": overrides or {}}
    atomic_write_json(out_dir / "compare.json", payload)
    atomic_write_text(out_dir / "compare.md", table + "\n")
    if plots:
        from ..plots import plot_compare, plot_prediction_scatter
        plot_compare(summary, out_dir / "compare_tau.png", noise=noise)
        plot_prediction_scatter([r["results"] for r in rows], out_dir / "compare_scatter.png")
    print(table)
    return payload


def _progress(iterable: Any, total: Optional[int] = None) -> Any:
    from ..progress import progress_bar
    return progress_bar(iterable, desc="bench compare", total=total, unit="run")
