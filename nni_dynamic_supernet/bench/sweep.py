"""``nds bench sweep``: the ranking quality of recipes as their training budget grows.

A technique can only be judged at a budget where its baseline has finished improving.
:func:`sweep_budgets` trains every (recipe, seed) at every budget (epochs) and reports per
budget the Kendall tau, the final training loss, the median predicted accuracy of the table's
architectures (how far the supernet is from chance), CB and the compute of a run; per recipe
it reports the plateau budget: the first budget after which the next budget of the list
(double it for the usual doubling list) adds less than ``plateau_delta`` tau.
Finished runs are appended to ``rows.jsonl`` in the output directory, so an interrupted
sweep resumes where it stopped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..atomic_io import atomic_write_json, atomic_write_text
from ..errors import ConfigError
from ..catalog import get_preset
from .compare import DEFAULT_RECIPE, run_jobs, split_recipe_overrides, table_overrides

__all__ = ["sweep_budgets", "plateau_budget", "format_sweep"]

_COLUMNS = ("kendall_tau", "final_loss", "median_predicted_accuracy", "cb", "steps", "path_forwards", "cpu_seconds")


def plateau_budget(budgets: Sequence[int], taus: Sequence[float], delta: float = 0.02) -> Optional[int]:
    """The first budget whose successor in the list adds less than ``delta`` mean tau.

    Parameters
    ----------
    budgets
        Budgets in increasing order (e.g. 60, 120, 240: each doubles the previous).
    taus
        Mean Kendall tau at each budget.
    delta
        The gain below which the ranking counts as levelled off.

    Returns
    -------
    int or None
        ``None`` if every step of the list still adds ``delta`` or more (no plateau yet).

    Examples
    --------
    >>> plateau_budget([60, 120, 240, 480], [0.40, 0.48, 0.55, 0.56])
    240
    """
    for i in range(len(budgets) - 1):
        if taus[i + 1] - taus[i] < delta:
            return int(budgets[i])
    return None


def _summaries(rows: Sequence[dict], strategies: Sequence[str], budgets: Sequence[int], delta: float) -> list[dict]:
    out = []
    for name in strategies:
        per_budget = []
        for budget in budgets:
            mine = [r for r in rows if r["strategy"] == name and r["epochs"] == budget]
            cell: dict[str, Any] = {"epochs": budget, "n": len(mine)}
            for key in _COLUMNS:
                values = np.array([r[key] for r in mine if r.get(key) is not None], dtype=float)
                cell[key] = float(values.mean()) if values.size else float("nan")
                cell[f"{key}_std"] = float(values.std()) if values.size else float("nan")
            per_budget.append(cell)
        done = [c for c in per_budget if c["n"]]
        out.append({"strategy": name, "budgets": per_budget,
                    "plateau_epochs": plateau_budget([c["epochs"] for c in done], [c["kendall_tau"] for c in done],
                                                     delta)})
    return out


def format_sweep(summary: Sequence[dict], delta: float = 0.02) -> str:
    """A Markdown table of the sweep (one row per recipe and budget), plateaus underneath."""
    lines = ["| recipe | epochs | seeds | tau (mean ± std) | final loss | median pred. acc | CB | steps | path fwd | "
             "CPU s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        for c in s["budgets"]:
            if not c["n"]:
                continue
            lines.append(f"| {s['strategy']} | {c['epochs']} | {c['n']} | {c['kendall_tau']:.3f} ± "
                         f"{c['kendall_tau_std']:.3f} | {c['final_loss']:.3f} | {c['median_predicted_accuracy']:.1f} | "
                         f"{c['cb']:.3f} | {c['steps']:.0f} | {c['path_forwards']:.0f} | {c['cpu_seconds']:.0f} |")
    lines.append("")
    for s in summary:
        plateau = s["plateau_epochs"]
        lines.append(f"{s['strategy']}: plateau budget {plateau} epochs (next budget adds < {delta} tau)"
                     if plateau is not None else
                     f"{s['strategy']}: no plateau within the budgets run (every step added >= {delta} tau)")
    return "\n".join(lines)


def sweep_budgets(strategies: Sequence[str], seeds: Sequence[int], budgets: Sequence[int],
                  config: Optional[str] = None, out_dir: Path = Path("bench_sweep"),
                  overrides: Optional[dict] = None, workers: int = 1, table: Optional[str] = None,
                  plateau_delta: float = 0.02) -> dict:
    """Train every recipe x seed at every budget and find where the ranking levels off.

    Parameters
    ----------
    strategies
        Registered strategy names.
    seeds
        Seeds per strategy and budget.
    budgets
        Training epochs, e.g. ``[60, 120, 240, 480]``; sorted and deduplicated.
    config, overrides, workers, table
        As in :func:`~nni_dynamic_supernet.bench.compare.compare_recipes`.
    out_dir
        Where runs (``e<epochs>/<recipe>/seed<s>``), ``rows.jsonl``, ``sweep.json`` and
        ``sweep.md`` go.
    plateau_delta
        Tau gain below which a budget counts as the plateau.

    Returns
    -------
    dict
        ``{"runs": [...], "summary": [...], "table": str, ...}``.
    """
    for name in strategies:
        get_preset(name)
    if not budgets or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets):
        raise ConfigError("--epochs", list(budgets), "give one or more positive integer budgets, e.g. 60 120 240")
    if workers < 1:
        raise ConfigError("--workers", workers, "must be >= 1")
    budgets = sorted(set(int(b) for b in budgets))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = str(config or DEFAULT_RECIPE)
    common, own = split_recipe_overrides(overrides, strategies)
    base = {**table_overrides(table), **common}
    log = out_dir / "rows.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    done = {(r["strategy"], r["seed"], r["epochs"]) for r in rows}
    jobs = [{"strategy": s, "seed": int(seed), "config": config,
             "overrides": {**base, **own[s], "training.epochs": budget}, "out": str(out_dir / f"e{budget}" / s / f"seed{seed}")}
            for budget in budgets for s in strategies for seed in seeds if (s, int(seed), budget) not in done]
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as fh:
        # One batch per budget, so small budgets are logged (and reusable) before large ones run.
        for budget in budgets:
            for row in run_jobs([j for j in jobs if j["overrides"]["training.epochs"] == budget], workers):
                rows.append(row)
                fh.write(json.dumps(row, allow_nan=True) + "\n")
                fh.flush()
    summary = _summaries(rows, list(strategies), budgets, plateau_delta)
    text = format_sweep(summary, plateau_delta)
    noise = rows[0]["noise_ceiling"] if rows else None
    if noise:
        text += f"\n\nNoise ceiling of the table: Kendall tau {noise['kendall_tau']:.3f}."
    payload = {"runs": rows, "summary": summary, "table": text, "budgets": budgets, "noise_ceiling": noise,
               "wall_seconds": time.monotonic() - started, "config": config, "overrides": base,
               "plateau_delta": plateau_delta}
    atomic_write_json(out_dir / "sweep.json", payload)
    atomic_write_text(out_dir / "sweep.md", text + "\n")
    print(text)
    return payload
