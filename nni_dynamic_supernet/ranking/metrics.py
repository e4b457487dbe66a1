"""Ranking-quality metrics: how well supernet-predicted accuracies order subnets.

Every function takes two equally long sequences, ``pred`` (the accuracy the supernet
predicts for each architecture) and ``truth`` (the stand-alone, ground-truth accuracy of
the same architectures, in the same order), and returns a plain Python ``float``.

The measures are those the supernet-ranking papers report:

* :func:`kendall_tau` and :func:`spearman` -- rank correlations over all given archs
  (Kendall is tau-b, i.e. tie-corrected, as in ``scipy.stats.kendalltau``).
* :func:`stratified_subset` -- the SUMNAS/CaLR subset (400 equal-width accuracy bins,
  best arch per bin) that removes near-ties no method can order; feed its indices to
  :func:`kendall_tau` to get the "stratified" tau.
* :func:`precision_at_top` -- P@top-k% (PA&DA).
* :func:`top_fraction_spearman` -- Spearman among the best archs only (GM-NAS Table 7).
* :func:`complexity_bias` and :func:`complexity_convergence_correlation` -- CB and
  rho_CC from the CaLR paper: do mis-rankings and convergence depend on model size?
* :func:`ranking_report` -- all of the above in one JSON-ready dict.

NaN convention
--------------
A correlation is undefined when one side is constant (or fewer than two archs remain);
the functions then return ``nan`` instead of raising, so a degenerate run still produces a
report. NaN *inputs* propagate into the correlations (the result is ``nan``) because a
silently dropped architecture would bias the comparison between methods; CB and rho_CC,
which are defined on subsets anyway, drop archs with a NaN in any of their inputs.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np
from scipy import stats

from ..errors import ConfigError

__all__ = [
    "kendall_tau",
    "spearman",
    "precision_at_top",
    "top_fraction_spearman",
    "complexity_bias",
    "complexity_convergence_correlation",
    "stratified_subset",
    "ranking_report",
]

# Pairs processed per chunk in complexity_bias: bounds the temporary sign matrices to a
# few tens of MB even for the full 15,625-arch NAS-Bench-201 space (1.2e8 pairs).
_CB_CHUNK_ELEMENTS = 2_000_000
#: Top fractions (by ground truth) of the top-k% Spearman keys of :func:`ranking_report`.
TOP_FRACTIONS = (0.1, 0.2)


def _as_pair(pred: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Convert two sequences to float64 vectors of equal length, or raise ConfigError."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ConfigError("truth", f"{t.size} values",
                          f"must have as many values as pred ({p.size}), one per architecture")
    return p, t


def _check_fraction(fraction: float) -> float:
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ConfigError("fraction", fraction, "use a number in (0, 1], e.g. 0.05 for the top 5%")
    return float(fraction)


def _top_k(n: int, fraction: float) -> int:
    # round() as specified (banker's rounding on exact halves); never fewer than one arch.
    return max(1, int(round(fraction * n)))


def _top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values; ties keep input order, NaN counts as the worst."""
    key = np.where(np.isnan(values), -np.inf, values)
    # A stable sort makes the tie-break reproducible (earlier index wins).
    return np.argsort(-key, kind="stable")[:k]


def _correlation(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    """Run a scipy correlation, mapping degenerate inputs to nan without warnings."""
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    if np.all(a == a[0]) or np.all(b == b[0]):
        # Constant input: the correlation is undefined (scipy would warn and return nan).
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = fn(a, b)[0]
    return float(value)


def kendall_tau(pred: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall rank correlation (tau-b) between predicted and true accuracies.

    This is the headline ranking measure of the supernet papers; tau-b
    corrects for ties, as ``scipy.stats.kendalltau`` does in the reference code.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.

    Returns
    -------
    float
        tau-b in [-1, 1]; ``nan`` when fewer than two archs, a side is constant, or an
        input contains NaN.

    Examples
    --------
    >>> kendall_tau([1, 2, 3], [10, 30, 20])
    0.33333333333333337
    """
    p, t = _as_pair(pred, truth)
    return _correlation(lambda a, b: stats.kendalltau(a, b), p, t)


def spearman(pred: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman rank correlation between predicted and true accuracies.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.

    Returns
    -------
    float
        rho in [-1, 1]; ``nan`` in the degenerate cases listed in :func:`kendall_tau`.
    """
    p, t = _as_pair(pred, truth)
    return _correlation(lambda a, b: stats.spearmanr(a, b), p, t)


def precision_at_top(pred: Sequence[float], truth: Sequence[float], fraction: float = 0.05) -> float:
    """P@top-k%: the share of the truly best archs that the supernet also puts on top.

    ``|top-k by pred & top-k by truth| / k`` with ``k = max(1, round(fraction * n))``
    (as in the papers). Ties at the cut-off are broken by input order (earlier wins) so the
    result is reproducible; a NaN prediction ranks last.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.
    fraction
        Size of the top set as a fraction of all archs, in (0, 1]; 0.05 gives P@top5%.

    Returns
    -------
    float
        Precision in [0, 1]; ``nan`` for empty input.
    """
    fraction = _check_fraction(fraction)
    p, t = _as_pair(pred, truth)
    n = p.size
    if n == 0:
        return math.nan
    k = _top_k(n, fraction)
    hits = np.intersect1d(_top_indices(p, k), _top_indices(t, k)).size
    return float(hits / k)


def top_fraction_spearman(pred: Sequence[float], truth: Sequence[float], fraction: float) -> float:
    """Spearman correlation among the archs in the top ``fraction`` by ground truth.

    Measures whether the supernet orders the *good* architectures correctly, which is
    what a search needs (GM-NAS Table 7). The top set has ``max(1, round(fraction * n))``
    archs, chosen by truth with input order breaking ties.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.
    fraction
        Size of the top set as a fraction of all archs, in (0, 1].

    Returns
    -------
    float
        rho on the top set; ``nan`` when it has fewer than two archs or is constant.
    """
    fraction = _check_fraction(fraction)
    p, t = _as_pair(pred, truth)
    if p.size == 0:
        return math.nan
    idx = _top_indices(t, _top_k(p.size, fraction))
    return _correlation(lambda a, b: stats.spearmanr(a, b), p[idx], t[idx])


def complexity_bias(pred: Sequence[float], truth: Sequence[float], complexity: Sequence[float]) -> float:
    """Complexity Bias (CB, CaLR paper): are mis-ranked pairs biased against big subnets?

    Over all pairs the supernet orders opposite to the ground truth, CB is the fraction in
    which the arch the supernet ranks *lower* has the *higher* complexity (it is
    under-estimated while actually better). CB is about 0.5 when mis-rankings do not
    depend on size; CB > 0.5 means large subnets are systematically under-ranked
    (CaLR paper). Pairs tied in truth, pred or complexity are excluded, as are archs
    with a NaN in any input.

    The pair loop is vectorized and done in row chunks, so the full NAS-Bench-201 space
    (n = 15,625, about 1.2e8 pairs) fits in a few tens of MB.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.
    complexity
        Complexity score of each arch (e.g. parameter count), same order.

    Returns
    -------
    float
        CB in [0, 1]; ``nan`` when no pair is mis-ranked.
    """
    p, t = _as_pair(pred, truth)
    c = np.asarray(complexity, dtype=np.float64).reshape(-1)
    if c.shape != p.shape:
        raise ConfigError("complexity", f"{c.size} values",
                          f"must have as many values as pred ({p.size}), one per architecture")
    keep = ~(np.isnan(p) | np.isnan(t) | np.isnan(c))
    p, t, c = p[keep], t[keep], c[keep]
    n = p.size
    mis_total = 0
    mis_cpx = 0
    rows = max(1, _CB_CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        # Ordered pairs (i, j) for every i in the chunk and every j: each unordered pair is
        # counted twice with the same outcome, so the ratio is unchanged and we avoid
        # building a triangular mask. Diagonal pairs have sign 0 and drop out.
        sp = np.sign(p[start:stop, None] - p[None, :])
        st = np.sign(t[start:stop, None] - t[None, :])
        sc = np.sign(c[start:stop, None] - c[None, :])
        # Mis-ranked: strict, opposite orders (ties give 0 and are excluded); also
        # exclude pairs tied in complexity, for which 1_cpx is undefined.
        mis = (sp * st < 0) & (sc != 0)
        mis_total += int(np.count_nonzero(mis))
        # The lower-predicted arch has the higher complexity <=> pred and complexity
        # order the pair oppositely.
        mis_cpx += int(np.count_nonzero(mis & (sp * sc < 0)))
    if mis_total == 0:
        return math.nan
    return float(mis_cpx / mis_total)


def complexity_convergence_correlation(
    pred: Sequence[float],
    truth: Sequence[float],
    complexity: Sequence[float],
    min_truth: Optional[float] = None,
) -> float:
    """Complexity-Convergence Correlation (rho_CC, CaLR paper).

    Kendall tau between each arch's complexity and its convergence ratio
    ``pred / truth`` (supernet-estimated over stand-alone accuracy). About 0 when
    convergence does not depend on size; negative when large subnets converge less.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.
    complexity
        Complexity score of each arch, same order.
    min_truth
        Archs whose truth is ``<= min_truth`` are excluded, because a chance-level
        denominator makes the ratio meaningless (set it to the chance
        level, e.g. 10 for 10 classes in percent). ``None`` excludes only ``truth <= 0``.

    Returns
    -------
    float
        tau-b; ``nan`` when fewer than two archs remain or a side is constant.
    """
    p, t = _as_pair(pred, truth)
    c = np.asarray(complexity, dtype=np.float64).reshape(-1)
    if c.shape != p.shape:
        raise ConfigError("complexity", f"{c.size} values",
                          f"must have as many values as pred ({p.size}), one per architecture")
    threshold = 0.0 if min_truth is None else float(min_truth)
    keep = ~(np.isnan(p) | np.isnan(t) | np.isnan(c)) & (t > threshold)
    ratio = p[keep] / t[keep]
    return _correlation(lambda a, b: stats.kendalltau(a, b), c[keep], ratio)


def stratified_subset(truth: Sequence[float], n_bins: int = 400) -> list[int]:
    """Indices of the SUMNAS/CaLR stratified subset: the best arch of each accuracy bin.

    Splits ``[min(truth), max(truth)]`` into ``n_bins`` equal-width bins (half-open
    ``[a, b)`` except the last, which includes the maximum -- the same rule as
    ``numpy.histogram``) and keeps, in each non-empty bin, the index with the highest
    truth (the first one on ties). Near-tied archs, which no method can order, thus
    collapse to one representative. NaN truths are ignored.

    Parameters
    ----------
    truth
        Ground-truth accuracy of each architecture.
    n_bins
        Number of equal-width bins; 400 in the papers.

    Returns
    -------
    list of int
        Sorted indices into ``truth``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError("n_bins", n_bins, "use a positive integer, e.g. 400")
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    valid = np.flatnonzero(~np.isnan(t))
    if valid.size == 0:
        return []
    tv = t[valid]
    lo, hi = float(tv.min()), float(tv.max())
    if hi == lo:
        bins = np.zeros(tv.size, dtype=np.int64)
    else:
        edges = np.linspace(lo, hi, int(n_bins) + 1)
        bins = np.clip(np.searchsorted(edges, tv, side="right") - 1, 0, int(n_bins) - 1)
    # Sort by (bin, -truth, index) so the first row of each bin is its best arch, the
    # earliest index winning ties.
    order = np.lexsort((valid, -tv, bins))
    first = np.ones(order.size, dtype=bool)
    first[1:] = bins[order][1:] != bins[order][:-1]
    return sorted(int(i) for i in valid[order[first]])


def ranking_report(
    pred: Sequence[float],
    truth: Sequence[float],
    complexity: Optional[Sequence[float]] = None,
    chance: Optional[float] = None,
    n_bins: int = 400,
) -> dict[str, Any]:
    """All ranking measures for one set of predictions, as a JSON-ready dict.

    Parameters
    ----------
    pred
        Supernet-predicted accuracy of each architecture.
    truth
        Ground-truth accuracy of the same architectures, same order.
    complexity
        Optional complexity score per arch; when given, ``cb`` and ``rho_cc`` are added.
        Both are computed over all given archs (the CaLR paper leaves the set open).
    chance
        Chance-level accuracy (same unit as ``truth``); archs at or below it are left
        out of ``rho_cc``. ``None`` leaves out only ``truth <= 0``.
    n_bins
        Bins of the stratified subset (:func:`stratified_subset`).

    Returns
    -------
    dict
        ``kendall_tau``, ``spearman``, ``p_at_top5`` (fraction 0.05),
        ``kendall_tau_stratified`` (on the stratified subset of ``truth``), ``spearman_top10`` and
        ``spearman_top20`` (Spearman among the top 10% / 20% archs by truth, GM-NAS Table 7), ``n`` and
        ``n_stratified`` (ints), and ``cb``, ``rho_cc`` when ``complexity`` is given.
        Values are built-in ``float``/``int`` (never numpy scalars), so the dict can be
        written with ``json.dumps`` and loaded with ``torch.load(weights_only=True)``;
        undefined values are ``float('nan')``.
    """
    p, t = _as_pair(pred, truth)
    subset = stratified_subset(t, n_bins=n_bins)
    report: dict[str, Any] = {
        "kendall_tau": kendall_tau(p, t),
        "spearman": spearman(p, t),
        "p_at_top5": precision_at_top(p, t, 0.05),
        "kendall_tau_stratified": kendall_tau(p[subset], t[subset]),
        # GM-NAS Table 7: does the supernet order the *best* archs? (the paper's 0.2-1% of 15,625 archs are
        # 31-156 archs; on a table of ~160 archs the top 10% / 20% are sets of comparable size).
        **{f"spearman_top{round(100 * f)}": top_fraction_spearman(p, t, f) for f in TOP_FRACTIONS},
        "n": int(p.size),
        "n_stratified": len(subset),
    }
    if complexity is not None:
        report["cb"] = complexity_bias(p, t, complexity)
        report["rho_cc"] = complexity_convergence_correlation(p, t, complexity, min_truth=chance)
    return report
