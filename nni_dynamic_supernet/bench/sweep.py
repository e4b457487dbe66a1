"""``nds bench sweep``: the ranking quality of recipes as their training budget grows.

A technique can only be judged at a budget where its baseline has finished improving.
:func:`sweep_budgets` trains every (recipe, seed) at every budget (epochs) and reports per
budget the Kendall tau, the final training loss, the median predicted accuracy of the table's
architectures (how far the supernet is from chance), CB and the compute of a run; per recipe
it reports the paired tau gain from each budget to the next on the seeds run at both, and
the plateau budget: the first budget whose gain to the next has a 95 % interval entirely
below ``plateau_delta`` tau (:func:`plateau_budget`). Too few seeds give wide intervals and
no plateau, rather than a plateau declared from noise.
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
from .baseline_columns import format_baselines
from .paired_stats import paired_summary

__all__ = ["sweep_budgets", "plateau_budget", "budget_steps", "format_sweep"]

_COLUMNS = ("kendall_tau", "final_loss", "median_predicted_accuracy", "cb", "steps", "path_forwards", "cpu_seconds")


def budget_steps(rows: Sequence[dict], strategy: str, budgets: Sequence[int], alpha: float = 0.05) -> list[dict]:
    """The paired tau gain of each budget over the previous one, on the seeds run at both.

    Parameters
    ----------
    rows
        Per-run rows (``strategy``, ``seed``, ``epochs``, ``kendall_tau``).
    strategy
        The recipe.
    budgets
        Budgets in increasing order.
    alpha
        Level of the interval (``1 - alpha``).

    Returns
    -------
    list of dict
        Per consecutive pair of budgets: ``from``, ``to``, the shared ``seeds`` and
        :func:`~.paired_stats.paired_summary` of tau at ``to`` minus tau at ``from``.
    """
    by = {(int(r["epochs"]), int(r["seed"])): r["kendall_tau"] for r in rows
          if r["strategy"] == strategy and r.get("kendall_tau") is not None}
    out = []
    for low, high in zip(budgets, budgets[1:]):
        seeds = sorted(s for (b, s) in by if b == low and (high, s) in by)
        gain = paired_summary([by[(high, s)] for s in seeds], [by[(low, s)] for s in seeds], alpha)
        out.append({"from": int(low), "to": int(high), "seeds": seeds, **gain})
    return out


def plateau_budget(steps: Sequence[dict], delta: float = 0.02) -> Optional[int]:
    """The first budget after which the next one adds less than ``delta`` tau, with 95 % confidence.

    A budget is the plateau only when the upper end of the 95 % interval of the paired gain
    to the next budget (the same seeds at both) is below ``delta``: a gain that the seeds
    cannot tell from ``delta`` or more is no evidence of a plateau.

    Parameters
    ----------
    steps
        :func:`budget_steps` of one recipe.
    delta
        The gain below which the ranking counts as levelled off.

    Returns
    -------
    int or None
        ``None`` when no step is shown to add less than ``delta``.

    Examples
    --------
    >>> plateau_budget([{"from": 60, "to": 120, "ci95": [0.01, 0.09]}, {"from": 120, "to": 240, "ci95": [-0.05, 0.01]}])
    120
    """
    for step in steps:
        ci = step.get("ci95")
        if ci is not None and ci[1] is not None and ci[1] < delta:
            return int(step["from"])
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
                cell[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else float("nan")
            per_budget.append(cell)
        steps = budget_steps(rows, name, [c["epochs"] for c in per_budget if c["n"]])
        out.append({"strategy": name, "budgets": per_budget, "steps": steps,
                    "plateau_epochs": plateau_budget(steps, delta)})
    return out


def _read_log(log: Path) -> list[dict]:
    """The finished runs of ``rows.jsonl``; a last line cut by a crash mid-write is dropped (its run reruns)."""
    if not log.exists():
        return []
    rows = []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not (isinstance(row, dict) and {"strategy", "seed", "epochs"} <= set(row)):
            if number == len(lines):
                continue
            raise ConfigError("--out", str(log), f"line {number} is not a sweep row; the log is damaged: move it "
                                                 "away to start the sweep afresh")
        rows.append(row)
    if lines and not log.read_bytes().endswith(b"\n"):
        # The next append must start on a line of its own.
        with open(log, "a", encoding="utf-8") as fh:
            fh.write("\n")
    return rows


def format_sweep(summary: Sequence[dict], delta: float = 0.02) -> str:
    """A Markdown table of the sweep (one row per recipe and budget), plateaus underneath."""
    lines = ["| recipe | epochs | seeds | tau (mean ± SD) | final loss | median pred. acc | CB | steps | path fwd | "
             "CPU s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        for c in s["budgets"]:
            if not c["n"]:
                continue
            lines.append(f"| {s['strategy']} | {c['epochs']} | {c['n']} | {c['kendall_tau']:.3f} ± "
                         f"{c['kendall_tau_std']:.3f} | {c['final_loss']:.3f} | {c['median_predicted_accuracy']:.1f} | "
                         f"{c['cb']:.3f} | {c['steps']:.0f} | {c['path_forwards']:.0f} | {c['cpu_seconds']:.0f} |")
    lines += ["", "| recipe | budget step | seeds at both | tau gain (mean [95% CI]) | p (paired t) | p (sign-flip) |",
              "|---|---|---|---|---|---|"]
    for s in summary:
        for step in s.get("steps", []):
            ci = step.get("ci95")
            gain = (f"{step['diff_mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else
                    ("n/a" if step.get("diff_mean") is None else f"{step['diff_mean']:+.3f}"))
            p_t, p_s = step.get("p_ttest"), step.get("p_sign_flip")
            lines.append(f"| {s['strategy']} | {step['from']} -> {step['to']} | {step['n']} | {gain} | "
                         f"{'n/a' if p_t is None else format(p_t, '.3f')} | {'n/a' if p_s is None else format(p_s, '.3f')} |")
    lines.append("")
    for s in summary:
        plateau = s["plateau_epochs"]
        lines.append(f"{s['strategy']}: plateau at {plateau} epochs (the 95% interval of the paired gain to the next "
                     f"budget lies below {delta} tau)" if plateau is not None else
                     f"{s['strategy']}: no plateau shown within the budgets run (no step's 95% interval of the paired "
                     f"gain lies below {delta} tau; more seeds narrow the intervals)")
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
    rows = _read_log(log)
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
                fh.write(json.dumps(row, allow_nan=False) + "\n")  # rows hold null, not NaN (strict JSON)
                fh.flush()
    summary = _summaries(rows, list(strategies), budgets, plateau_delta)
    text = format_sweep(summary, plateau_delta)
    noise = rows[0]["noise_ceiling"] if rows else None
    extra = format_baselines(next((r["baselines"] for r in rows if r.get("baselines")), None),
                             next((r["n_stratified"] for r in rows if r.get("n_stratified")), None))
    if extra:
        text += "\n\n" + extra
    if noise:
        text += f"\n\nNoise ceiling of the table: Kendall tau {noise['kendall_tau']:.3f}."
    payload = {"runs": rows, "summary": summary, "table": text, "budgets": budgets, "noise_ceiling": noise,
               "wall_seconds": time.monotonic() - started, "config": config, "overrides": base,
               "plateau_delta": plateau_delta}
    atomic_write_json(out_dir / "sweep.json", payload)
    atomic_write_text(out_dir / "sweep.md", text + "\n")
    print(text)
    return payload
