"""The registered-verdict table of the docs, generated from the result files and nothing else.

``nds bench verdicts --dir benchmarks/verdicts --out docs/_generated/verdict_table.rst``
writes it; a test regenerates it and compares, so the docs cannot say more than the files.
Each row is one test of the family (``family.yaml``): the pair, the budgets, the measure, how
many of the registered seeds have run, the mean paired difference with its 95 % interval, the
sign-flip and t-test p-values, the family-adjusted p (Holm over every registered test, a test
still running counting as p = 1), the minimum detectable effect at 80 % power, the verdict and
the compute of one run of each arm.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

from ..atomic_io import atomic_write_json
from ..errors import ConfigError
from ..ranking.ground_truth import GroundTruth
from ..ranking.tables import resolve_table_path
from .baseline_columns import compact_baselines
from .paired_stats import holm
from .verdict_registration import Family, load_family, load_registration, result_path

__all__ = ["verdict_rows", "verdict_table_rst", "verdict_word", "refresh_baselines", "BASELINES_FILE"]


def _load_result(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(str(path), "unreadable", "is not a valid JSON result file") from None
    return data if isinstance(data, dict) else None


def verdict_word(result: Optional[dict], adjusted_p: Optional[float], alpha: float) -> str:
    """The verdict of one test: only a complete test gets one, and only through its family-adjusted p.

    Examples
    --------
    >>> verdict_word({"status": "complete", "diff_mean": 0.1, "mde80": 0.05}, 0.01, 0.05)
    'replicated'
    >>> verdict_word({"status": "incomplete", "n_seeds": 3, "n_registered": 20}, None, 0.05)
    'running: 3 of 20 seeds; no verdict yet'
    """
    if result is None:
        return "not run yet"
    if result.get("status") != "complete":
        return f"running: {result.get('n_seeds', 0)} of {result.get('n_registered')} seeds; no verdict yet"
    if adjusted_p is not None and adjusted_p < alpha:
        return "replicated" if result["diff_mean"] > 0 else "reversed: the technique is worse"
    return (f"not replicated (an effect of {result['mde80']:+.3f} or more would have been found with 80% power)")


def verdict_rows(folder: Union[str, Path]) -> tuple[Family, list[dict]]:
    """The family and one row per registered test of ``folder`` (with its result and adjusted p)."""
    folder = Path(folder)
    family = load_family(folder / "family.yaml")
    rows = []
    for name in family.tests:
        reg_path = folder / f"{name}.yaml"
        reg = load_registration(reg_path)
        result = _load_result(result_path(reg_path))
        if result is not None and result.get("registration_sha256") != reg.sha256:
            raise ConfigError(str(result_path(reg_path)), "stale", "was written for another version of the "
                                                                   "registration; rerun nds bench verdict")
        p = None
        if result is not None and result.get("status") == "complete":
            p = result.get("p_sign_flip" if family.p_value == "sign_flip" else "p_ttest")
        rows.append({"registration": reg, "result": result, "p": p})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["adjusted_p"] = adjusted
        row["verdict"] = verdict_word(row["result"], adjusted, family.alpha)
    return family, rows


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _p(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.4f}"


BASELINES_FILE = "baselines.json"
"""Per table, the trivial rankers' Kendall taus (``nds bench verdicts --refresh-baselines`` writes it)."""


def refresh_baselines(folder: Union[str, Path]) -> Path:
    """Compute the trivial rankers of every table the family's tests use and write ``baselines.json``."""
    from .table_baselines import baselines_for, table_scores  # torch and the data: only to refresh
    folder = Path(folder)
    _, rows = verdict_rows(folder)
    out = {}
    for table in dict.fromkeys(r["registration"].table for r in rows):
        truth = GroundTruth.load(resolve_table_path(table))
        scores, missing = table_scores(truth)
        out[table] = compact_baselines(baselines_for(truth, None, scores, missing))
    return atomic_write_json(folder / BASELINES_FILE, out)


def _baseline_lines(folder: Path) -> list[str]:
    path = folder / BASELINES_FILE
    if not path.is_file():
        return []
    lines = []
    for table, block in json.loads(path.read_text()).items():
        parts = [f"{name} {b['kendall_tau']:.3f} / {b['kendall_tau_random_ties']:.3f}" for name, b in block.items()
                 if b.get("kendall_tau") is not None]
        lines += ["", f"Trivial rankers of {table}, no training (Kendall tau-b / with ties broken at random): "
                      + ", ".join(parts) + ". A technique or baseline tau below the parameter count's ranks worse than "
                      "the parameter count, whatever the verdict on the pair."]
    return lines


def _arm(reg: Any, side: Any) -> str:
    budget = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in side.overrides.items()) or "recipe budget"
    return f"{side.recipe or reg.supernet.recipe} ({budget})"


def verdict_table_rst(folder: Union[str, Path]) -> str:
    """The reStructuredText of the registered-verdict table (a heading-free fragment to include)."""
    family, rows = verdict_rows(folder)
    lines = [
        f"Family: {len(rows)} registered tests (``family.yaml``, registered {family.registered}); "
        f"{family.correction.capitalize()} adjustment of the "
        f"{'exact sign-flip' if family.p_value == 'sign_flip' else 'paired t-test'} p-values at family-wise "
        f"alpha {family.alpha}. A test still running counts as p = 1.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - test",
        "     - technique vs baseline",
        "     - measure",
        "     - seeds run",
        "     - tau technique / baseline",
        "     - mean diff [95% CI]",
        "     - p sign-flip / t",
        "     - Holm p",
        "     - MDE (80%)",
        "     - verdict",
        "     - path fwd per run",
        "     - CPU s per run",
    ]
    for row in rows:
        reg, res = row["registration"], row["result"] or {}
        if res.get("status") != "complete":
            # No interim effect sizes: the registered n is run whatever they show, so they would only invite a look.
            res = {k: res[k] for k in ("n_seeds", "compute") if k in res}
        ci = res.get("ci95")
        diff = (f"{res['diff_mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and res.get("diff_mean") is not None
                else _fmt(res.get("diff_mean"), "+.3f"))
        comp = res.get("compute", {})
        t_c, b_c = comp.get("technique", {}), comp.get("baseline", {})
        lines += [
            f"   * - {reg.name}",
            f"     - {_arm(reg, reg.technique)} vs {_arm(reg, reg.baseline)}",
            f"     - {reg.measure} ({reg.table})",
            f"     - {res.get('n_seeds', 0)} of {reg.n}",
            f"     - {_fmt(res.get('technique_mean'), '.3f')} / {_fmt(res.get('baseline_mean'), '.3f')}",
            f"     - {diff}",
            f"     - {_p(res.get('p_sign_flip'))} / {_p(res.get('p_ttest'))}",
            f"     - {_p(row['adjusted_p'])}",
            f"     - {reg.mde if reg.power == 0.8 else res.get('mde80', reg.mde):.3f}",
            f"     - {row['verdict']}",
            f"     - {_fmt(t_c.get('path_forwards'), '.0f')} / {_fmt(b_c.get('path_forwards'), '.0f')}",
            f"     - {_fmt(t_c.get('cpu_seconds'), '.0f')} / {_fmt(b_c.get('cpu_seconds'), '.0f')}",
        ]
    lines += _baseline_lines(Path(folder))
    return "\n".join(lines) + "\n"
