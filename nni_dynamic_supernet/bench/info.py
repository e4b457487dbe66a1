"""A ground-truth table at a glance: size, spread, noise ceiling and capacity signal (``nds bench info``)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import ConfigError
from ..ranking.ground_truth import GroundTruth
from ..ranking.metrics import kendall_tau
from ..ranking.tables import TABLES, resolve_table_path

__all__ = ["bench_info", "capacity_signal", "partial_path"]


def partial_path(out_path: Union[str, os.PathLike]) -> Path:
    """Path of the resume sidecar of a table being built.

    Parameters
    ----------
    out_path
        The table's destination.

    Returns
    -------
    pathlib.Path
        ``<out_path>.partial.jsonl``.
    """
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".partial.jsonl")


def capacity_signal(table: GroundTruth) -> Optional[float]:
    """Kendall tau between parameter count and mean stand-alone accuracy over a table's archs.

    Complexity-aware techniques (CaLR, PA) can only help where larger subnets are better, so
    this is reported beside the noise ceiling.

    Parameters
    ----------
    table
        A ground-truth table.

    Returns
    -------
    float or None
        ``None`` when some entry lacks ``params`` or the table has fewer than two entries.
    """
    params = table.params()
    if params is None or len(table) < 2:
        return None
    return float(kendall_tau(params, table.accuracies()))


def bench_info(path: Union[str, os.PathLike]) -> str:
    """Summarize a ground-truth table in a few human-readable lines.

    Used by ``nds bench info`` and after a build, to see at a glance how many archs a table
    has, how spread out their accuracies are (a table is only useful for ranking when they
    differ) and its noise ceiling: how well two training seeds agree, which bounds the ranking
    quality any supernet can show against it. When the table is not written yet but a build
    sidecar exists, the build's progress is reported instead.

    Parameters
    ----------
    path
        A ``nds-ground-truth/1`` JSON table, or the name of an embedded one (``v1``, ``v2``, ``v2_26``).

    Returns
    -------
    str
        Several lines without a trailing newline.

    Raises
    ------
    ConfigError
        If the file is missing (and no build is in progress) or not a valid table.
    """
    name = str(path)
    path = resolve_table_path(path)
    sidecar = partial_path(path)
    if name in TABLES and not path.exists() and not sidecar.exists():
        raise ConfigError("TABLE", name, f"the {name} table is not installed; build it with `nds bench build --table "
                          f"{name} --out {name}.json` and pass that path")
    if not path.exists() and sidecar.exists():
        lines = sidecar.read_text(encoding="utf-8", errors="replace").splitlines()
        finished = sum(1 for line in lines[1:] if line.strip())
        return f"{path}: build in progress, {finished} (arch, seed) jobs finished (in {sidecar.name})"
    table = GroundTruth.load(path)
    acc = np.asarray(table.accuracies(), dtype=np.float64)
    seeds = table.per_seed_matrix()
    out = [
        f"{path}: {table.space} on {table.dataset} ({table.metric})",
        f"architectures: {len(table)}, seeds: {list(table.seeds)} "
        f"({int(np.sum(~np.isnan(seeds)))} trained models)",
    ]
    if acc.size:
        p10, p50, p90 = np.percentile(acc, [10, 50, 90])
        out.append(f"accuracy (%, mean over seeds): min {acc.min():.1f}, p10 {p10:.1f}, p50 {p50:.1f}, "
                   f"p90 {p90:.1f}, max {acc.max():.1f}")
    ceiling = table.noise_ceiling()
    if ceiling["n_seed_pairs"]:
        out.append(f"noise ceiling (seed vs seed): Kendall tau {ceiling['kendall_tau']:.3f} overall, "
                   f"{ceiling['kendall_tau_stratified']:.3f} on the stratified subset; "
                   f"Spearman {ceiling['spearman']:.3f}; mean |diff| {ceiling['mean_abs_diff']:.2f} points")
        if ceiling["split_half_seeds"]:
            k = ceiling["split_half_seeds"]
            out.append(f"noise ceiling (mean of {k} seeds vs mean of the other {k}): Kendall tau "
                       f"{ceiling['split_half_kendall_tau']:.3f} measured, "
                       f"{ceiling['split_half_kendall_tau_predicted']:.3f} by the normal-noise model")
        if not math.isnan(ceiling["kendall_tau_truth_vs_mean"]):
            from_halves = ceiling["kendall_tau_truth_vs_mean_split_half"]
            out.append(f"ceiling of a perfect ranker against the mean of {len(table.seeds)} seeds (normal-noise model): "
                       f"Kendall tau {ceiling['kendall_tau_truth_vs_mean']:.3f}"
                       + ("" if math.isnan(from_halves) else f" from the seed pairs, {from_halves:.3f} from the halves"))
    else:
        out.append("noise ceiling (seed vs seed): n/a (needs at least two seeds per arch)")
    signal = capacity_signal(table)
    if signal is not None:
        # NAS-Bench-201 CIFAR-10 has 0.577 over its 15,625 cells: the regime CaLR and PA assume.
        out.append(f"capacity signal: Kendall tau(params, accuracy) {signal:.3f} over {len(table)} archs "
                   "(NAS-Bench-201 CIFAR-10: 0.577)")
    else:
        out.append("capacity signal: n/a (the table has no parameter counts)")
    recipe = table.recipe
    if recipe.get("comparable_with_shipped_table") is False:
        out.append("note: built with a non-standard protocol (e.g. fewer epochs); not comparable with the shipped table")
    return "\n".join(out)
