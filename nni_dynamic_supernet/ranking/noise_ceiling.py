"""The noise ceiling of a ground-truth table: how well its training seeds agree with each other.

A supernet's ranking is judged against the mean over a table's seeds; this module says how
far even a perfect ranker could get against that noisy mean (:func:`noise_ceiling`).
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from .metrics import kendall_tau, spearman, stratified_subset

__all__ = ["noise_ceiling"]


def noise_ceiling(matrix: np.ndarray, mean: Sequence[float], n_bins: int = 400) -> dict[str, Any]:
    """How well the ground truth agrees with itself across training seeds.

    A supernet's ranking is read against this, so it is reported next to every ranking
    result. Two single seeds agree less than a perfect ranker would agree with the
    seed mean the rankings are judged by; the keys after ``n_seed_pairs`` say how much
    less. For every pair of seeds it uses the archs that have
    both; the stratified subset of a pair is chosen by the entries' mean accuracy
    (as the supernet's stratified tau is), restricted to those archs. Each statistic
    is then averaged over seed pairs.

    Parameters
    ----------
    matrix
        Per-seed accuracies, ``(n_archs, n_seeds)``, NaN where an architecture lacks a seed
        (:meth:`GroundTruth.per_seed_matrix <nni_dynamic_supernet.ranking.ground_truth.GroundTruth.per_seed_matrix>`).
    mean
        Each architecture's accuracy over its seeds (the table's accuracy).
    n_bins
        Bins of the stratified subset.

    Returns
    -------
    dict
        ``kendall_tau``, ``kendall_tau_stratified``, ``spearman``, ``mean_abs_diff``
        (floats, mean over seed pairs; NaN with fewer than two seeds) and
        ``n_seed_pairs`` (int, pairs with at least two shared archs). Also, because a
        ranking is judged against the *mean* over seeds, which is less noisy than one seed:

        * ``split_half_kendall_tau`` -- measured: Kendall tau between the means of two
          disjoint halves of the seeds (``split_half_seeds`` each), averaged over the
          ways to split them, on the archs that have every seed. It needs an even number
          of at least 4 seeds, else NaN (and ``split_half_seeds`` 0).
        * ``split_half_kendall_tau_predicted`` and ``kendall_tau_truth_vs_mean`` -- a
          model, not a measurement: seed results are taken as the architecture's true
          accuracy plus independent noise of equal variance, with normal scores. Then
          the seed-vs-seed tau gives the single-seed reliability ``rho = sin(pi tau / 2)``
          (Greiner's relation), a mean of ``n`` seeds has reliability
          ``n rho / (1 + (n - 1) rho)`` (Spearman-Brown), and the expected tau between
          the noise-free ranking and the table's mean of all its seeds is
          ``2 / pi * arcsin(sqrt(rho_n))``: the ceiling of a perfect ranker against this
          table. The predicted split-half tau is there to check the model against the
          measured one.
        * ``kendall_tau_truth_vs_mean_split_half`` -- the same ceiling estimated from the
          measured split-half tau instead (the table's mean is the mean of its two
          halves), so one model step shorter; NaN without split halves.
    """
    mean = np.asarray(mean, dtype=np.float64)
    taus, taus_strat, rhos, diffs = [], [], [], []
    for a, b in combinations(range(matrix.shape[1]), 2):
        rows = np.flatnonzero(~np.isnan(matrix[:, a]) & ~np.isnan(matrix[:, b]))
        if rows.size < 2:
            continue
        x, y = matrix[rows, a], matrix[rows, b]
        sub = stratified_subset(mean[rows], n_bins=n_bins)
        taus.append(kendall_tau(x, y))
        taus_strat.append(kendall_tau(x[sub], y[sub]))
        rhos.append(spearman(x, y))
        diffs.append(float(np.mean(np.abs(x - y))))

    tau = _finite_mean(taus)
    split_tau, half = _split_half_tau(matrix)
    return {
        "kendall_tau": tau,
        "kendall_tau_stratified": _finite_mean(taus_strat),
        "spearman": _finite_mean(rhos),
        "mean_abs_diff": _finite_mean(diffs),
        "n_seed_pairs": len(taus),
        "split_half_kendall_tau": split_tau,
        "split_half_seeds": half,
        "split_half_kendall_tau_predicted": _tau_of_mean(tau, half, against_truth=False) if half else math.nan,
        "kendall_tau_truth_vs_mean": _tau_of_mean(tau, matrix.shape[1], against_truth=True),
        "kendall_tau_truth_vs_mean_split_half": _tau_of_mean(split_tau, 2, against_truth=True),
    }


def _finite_mean(values: list[float]) -> float:
    """Mean of the non-NaN values (NaN when there are none): one constant seed pair or split must not hide the rest."""
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else math.nan


def _split_half_tau(matrix: np.ndarray) -> tuple[float, int]:
    """Mean Kendall tau between the seed means of two disjoint equal halves of the seeds, and the half size."""
    n_seeds = matrix.shape[1]
    if n_seeds < 4 or n_seeds % 2:
        return math.nan, 0
    half = n_seeds // 2
    full = matrix[~np.isnan(matrix).any(axis=1)]
    if len(full) < 2:
        return math.nan, 0
    taus = []
    # Each split once: the first half always holds seed column 0.
    for first in combinations(range(1, n_seeds), half - 1):
        a = [0, *first]
        b = [j for j in range(n_seeds) if j not in a]
        taus.append(kendall_tau(full[:, a].mean(axis=1), full[:, b].mean(axis=1)))
    return _finite_mean(taus), half


def _tau_of_mean(seed_tau: float, n: int, against_truth: bool) -> float:
    """Kendall tau of a mean of ``n`` seeds, from the seed-vs-seed tau, under the normal additive-noise model.

    ``against_truth``: against the noise-free ranking; else against another, independent mean of ``n`` seeds.
    """
    if math.isnan(seed_tau) or n < 1 or seed_tau <= 0:
        return math.nan
    rho = math.sin(math.pi * seed_tau / 2)  # Greiner: Pearson correlation of two seeds
    rho_n = n * rho / (1 + (n - 1) * rho)  # Spearman-Brown: reliability of a mean of n seeds
    r = math.sqrt(rho_n) if against_truth else rho_n
    return 2 / math.pi * math.asin(min(1.0, r))
