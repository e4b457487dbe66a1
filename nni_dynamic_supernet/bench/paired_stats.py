"""Paired-seed statistics of a technique against its baseline.

One value per seed on each side, paired by seed. The numbers a claim needs, all from
``scipy.stats`` or exact enumeration:

* the mean difference and its 95 % interval (Student t, ``n - 1`` degrees of freedom);
* the two-sided paired t-test;
* the two-sided sign-flip (randomisation) test: under the null hypothesis each paired
  difference is as likely to have either sign, so the p-value is the share of the ``2**n``
  sign assignments whose ``|sum|`` is at least the observed one. It is exact up to
  :data:`EXACT_MAX_N` pairs and a seeded Monte Carlo estimate above. It assumes no normality,
  but it cannot go below ``2 / 2**n`` (0.0625 at ``n = 5``);
* the minimum detectable effect: the true mean difference that a two-sided paired t-test
  at level ``alpha`` finds with the given power, for a standard deviation of the differences
  taken from a pilot (noncentral t).

:func:`holm` adjusts the p-values of a fixed family of tests (Holm-Bonferroni).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["EXACT_MAX_N", "sign_flip_p", "paired_summary", "min_detectable_effect", "holm", "sample_sd"]

#: Up to this many pairs the sign-flip p-value enumerates all ``2**n`` assignments.
EXACT_MAX_N = 20
_MONTE_CARLO_DRAWS = 200_000


def sample_sd(values: Sequence[float]) -> float:
    """The sample standard deviation (``ddof = 1``), NaN with fewer than 2 finite values."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(float(v))], dtype=float)
    return float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def sign_flip_p(diffs: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip p-value of the mean of ``diffs`` being 0.

    Parameters
    ----------
    diffs
        Paired differences (technique minus baseline).
    seed
        Seed of the Monte Carlo draws (used only above :data:`EXACT_MAX_N` pairs).

    Returns
    -------
    tuple
        ``(p, method)`` with ``method`` ``"exact"`` or ``"monte_carlo"``; ``(nan, "none")``
        without differences.

    Examples
    --------
    >>> sign_flip_p([0.1, 0.2, 0.3, 0.2, 0.1])
    (0.0625, 'exact')
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return float("nan"), "none"
    observed = abs(d.sum())
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    if n <= EXACT_MAX_N:
        count = 0
        chunk = 1 << min(n, 16)
        bits = np.arange(n)
        for start in range(0, 1 << n, chunk):
            codes = np.arange(start, min(start + chunk, 1 << n))
            signs = 1.0 - 2.0 * ((codes[:, None] >> bits) & 1)
            count += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
        return count / float(1 << n), "exact"
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(_MONTE_CARLO_DRAWS, n))
    count = int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    # The observed assignment is one of the draws' population: (count + 1) / (draws + 1) is a valid p-value.
    return (count + 1) / float(_MONTE_CARLO_DRAWS + 1), "monte_carlo"


def paired_summary(technique: Sequence[float], baseline: Sequence[float], alpha: float = 0.05) -> dict[str, Any]:
    """Everything a paired comparison reports, from per-seed values in the same seed order.

    Parameters
    ----------
    technique, baseline
        One value per seed each, paired by position.
    alpha
        Level of the confidence interval (``1 - alpha``).

    Returns
    -------
    dict
        ``n``, ``diff_mean``, ``sd_diff`` (``ddof = 1``), ``se``, ``ci95`` (two-element list; the
        ``1 - alpha`` interval), ``t``, ``p_ttest`` (two-sided, ``scipy.stats.ttest_rel``),
        ``p_sign_flip`` and ``p_sign_flip_method``, ``higher`` (pairs where the technique is
        higher), ``technique_mean`` and ``baseline_mean``. Undefined values are ``None``.
    """
    from scipy import stats
    a = np.asarray(technique, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"technique and baseline need one value per seed each ({len(a)} vs {len(b)})")
    d = a - b
    n = len(d)
    out: dict[str, Any] = {"n": n, "diff_mean": None, "sd_diff": None, "se": None, "ci95": None, "t": None,
                           "p_ttest": None, "p_sign_flip": None, "p_sign_flip_method": "none",
                           "higher": int(np.count_nonzero(d > 0)),
                           "technique_mean": float(a.mean()) if n else None,
                           "baseline_mean": float(b.mean()) if n else None}
    if n == 0:
        return out
    out["diff_mean"] = float(d.mean())
    p, method = sign_flip_p(d)
    out["p_sign_flip"], out["p_sign_flip_method"] = p, method
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
    out.update(sd_diff=sd, se=se, ci95=[out["diff_mean"] - half, out["diff_mean"] + half])
    if sd > 0:
        result = stats.ttest_rel(a, b)
        out.update(t=float(result.statistic), p_ttest=float(result.pvalue))
    return out


def min_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test detects with ``power``.

    Parameters
    ----------
    sd
        Standard deviation of the paired differences (from a pilot).
    n
        Number of pairs.
    alpha, power
        Test level and the wanted power.

    Returns
    -------
    float
        The effect, in the units of ``sd`` (noncentral t with ``n - 1`` degrees of freedom).

    Examples
    --------
    >>> round(min_detectable_effect(0.1, 20), 3)
    0.066
    """
    from scipy import optimize, stats
    if n < 2 or not sd > 0:
        raise ValueError("the minimum detectable effect needs n >= 2 and sd > 0")
    df = n - 1
    crit = float(stats.t.ppf(1 - alpha / 2, df))

    def shortfall(effect: float) -> float:
        nc = effect * math.sqrt(n) / sd
        # The lower tail is negligible at large noncentrality, where scipy returns NaN for it.
        lower = float(np.nan_to_num(stats.nct.cdf(-crit, df, nc)))
        return float(stats.nct.sf(crit, df, nc)) + lower - power

    # Noncentrality up to 60 covers power 0.8 down to n = 2.
    return float(optimize.brentq(shortfall, 1e-12 * sd, 60.0 * sd / math.sqrt(n), xtol=1e-12 * sd))


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-Bonferroni adjusted p-values of a fixed family; a missing p (``None``) counts as 1.

    Counting a missing test as p = 1 keeps the family's size: the adjusted p-values of the
    tests that finished are never smaller than they will be once every test has finished.

    Examples
    --------
    >>> holm([0.01, 0.04, None])
    [0.03, 0.08, None]
    """
    m = len(p_values)
    filled = [1.0 if p is None or not math.isfinite(p) else float(p) for p in p_values]
    order = sorted(range(m), key=lambda i: filled[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * filled[i]))
        adjusted[i] = running
    return [None if p_values[i] is None else adjusted[i] for i in range(m)]
