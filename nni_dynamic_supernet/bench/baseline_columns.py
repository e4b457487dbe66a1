"""The trivial rankers as columns of the ranking tables: their taus beside every recipe's.

Pure formatting, no torch: the tables of ``nds bench compare``, ``rescore`` and ``sweep`` and the
verdict table print the parameter count, FLOPs and zero-cost proxies of the same ground-truth
table (:mod:`.table_baselines` computes them).
"""
from __future__ import annotations

import math
from typing import Any, Optional

__all__ = ["BASELINE_NAMES", "compact_baselines", "format_baselines"]


#: Baselines printed under every ranking table, in this order (``ranking.baselines`` of a run).
BASELINE_NAMES = ("params", "flops", "synflow", "jacov", "nwot")


def compact_baselines(block: Optional[dict]) -> dict[str, dict[str, Any]]:
    """The taus of each baseline of a ``ranking.baselines`` block (the per-architecture scores dropped)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in (block or {}).items():
        if isinstance(value, dict) and name != "complexity_controlled":
            out[name] = {k: value[k] for k in ("kendall_tau", "kendall_tau_random_ties", "missing") if k in value}
    return out


def format_baselines(baselines: Optional[dict], n_stratified: Optional[int] = None) -> str:
    """The lines under a ranking table: each trivial ranker's tau on the same table, and the stratified subset size."""
    lines = []
    if baselines:
        parts = []
        for name in BASELINE_NAMES:
            b = baselines.get(name)
            if not b:
                continue
            if b.get("kendall_tau") is None or not math.isfinite(b["kendall_tau"]):
                parts.append(f"{name} n/a ({b.get('missing', 'undefined')})")
            else:
                parts.append(f"{name} {b['kendall_tau']:.3f} / {b.get('kendall_tau_random_ties', float('nan')):.3f}")
        lines.append("Trivial rankers of the same table, no training (Kendall tau-b / with ties broken at random): "
                     + ", ".join(parts) + ". A recipe whose tau is below the parameter count's ranks worse than the "
                     "parameter count. partial tau | params: the recipe's Kendall tau given parameter count "
                     "(0: no ranking information beyond size).")
    if n_stratified:
        lines.append(f"tau strat.: Kendall tau on the stratified subset ({n_stratified} architectures).")
    return "\n".join(lines)
