"""Tests of the ranking metrics against hand-computed values and brute-force references."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking import metrics
from nni_dynamic_supernet.ranking.metrics import (
    complexity_bias,
    complexity_convergence_correlation,
    kendall_tau,
    precision_at_top,
    ranking_report,
    spearman,
    stratified_subset,
    top_fraction_spearman,
)


# ----------------------------------------------------------------------------- correlations
def test_kendall_hand_case():
    # pairs (0,1) concordant, (0,2) concordant, (1,2) discordant -> (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [10, 30, 20]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_is_tau_b_with_ties():
    # pred tie on (0,1); (0,2), (1,2) concordant: tau_b = 2 / sqrt((3-1) * (3-0))
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_spearman_hand_case():
    # sum d^2 = 2 -> 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


@pytest.mark.parametrize("fn", [kendall_tau, spearman])
def test_correlations_degenerate_give_nan(fn):
    assert math.isnan(fn([1, 1, 1], [1, 2, 3]))
    assert math.isnan(fn([1, 2, 3], [5, 5, 5]))
    assert math.isnan(fn([1], [2]))
    assert math.isnan(fn([], []))
    assert math.isnan(fn([1, float("nan"), 3], [1, 2, 3]))


def test_length_mismatch_is_config_error():
    with pytest.raises(ConfigError) as err:
        kendall_tau([1, 2, 3], [1, 2])
    assert err.value.field == "truth"


# ----------------------------------------------------------------------------- top-k measures
def test_precision_at_top_hand_case():
    truth = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]  # top-2 by truth: {0, 1}
    pred = [10, 1, 9, 2, 3, 4, 5, 6, 7, 8]  # top-2 by pred: {0, 2}
    assert precision_at_top(pred, truth, fraction=0.2) == pytest.approx(0.5)
    assert precision_at_top(truth, truth, fraction=0.2) == 1.0
    # k = max(1, round(0.05 * 10)) = 1: index 0 is top in both
    assert precision_at_top(pred, truth) == 1.0


def test_precision_at_top_rejects_bad_fraction():
    with pytest.raises(ConfigError) as err:
        precision_at_top([1, 2], [1, 2], fraction=0)
    assert err.value.field == "fraction"


def test_top_fraction_spearman_uses_top_by_truth():
    truth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    # bottom half badly ranked, top half (indices 5..9) perfectly ranked
    pred = [5, 4, 3, 2, 1, 6, 7, 8, 9, 10]
    assert top_fraction_spearman(pred, truth, 0.5) == pytest.approx(1.0)
    pred_rev_top = [1, 2, 3, 4, 5, 10, 9, 8, 7, 6]
    assert top_fraction_spearman(pred_rev_top, truth, 0.5) == pytest.approx(-1.0)
    assert math.isnan(top_fraction_spearman(pred, truth, 0.1))  # a single arch


# ----------------------------------------------------------------------------- CB
def brute_force_cb(pred, truth, cpx):
    """The CaLR definition read literally: loop over every unordered pair."""
    mis = hit = 0
    for i, j in itertools.combinations(range(len(pred)), 2):
        if pred[i] == pred[j] or truth[i] == truth[j] or cpx[i] == cpx[j]:
            continue
        if (pred[i] > pred[j]) == (truth[i] > truth[j]):
            continue  # ordered correctly
        mis += 1
        lower = i if pred[i] < pred[j] else j  # the one the supernet ranks lower
        other = j if lower == i else i
        if cpx[lower] > cpx[other]:
            hit += 1
    return math.nan if mis == 0 else hit / mis


def test_complexity_bias_hand_case():
    truth = [1, 2, 3, 4, 5]
    pred = [2, 1, 4, 3, 0]
    cpx = [10, 20, 30, 25, 30]
    # Mis-ranked pairs: (0,1), (2,3), (0,4), (1,4), (2,4), (3,4).
    # (2,4) is tied in complexity -> excluded, 5 remain.
    # Lower-predicted arch has higher complexity in (0,1): 20>10, (0,4): 30>10,
    # (1,4): 30>20, (3,4): 30>25; not in (2,3): 25<30.  CB = 4/5.
    assert complexity_bias(pred, truth, cpx) == pytest.approx(0.8)
    assert brute_force_cb(pred, truth, cpx) == pytest.approx(0.8)


def test_complexity_bias_nan_without_misranking():
    assert math.isnan(complexity_bias([1, 2, 3], [1, 2, 3], [3, 2, 1]))


@pytest.mark.parametrize("seed", range(5))
def test_complexity_bias_matches_brute_force_random(seed, monkeypatch):
    rng = np.random.RandomState(seed)
    n = 40
    # Small integer ranges create ties in every one of the three vectors.
    pred = rng.randint(0, 15, n).astype(float)
    truth = rng.randint(0, 15, n).astype(float)
    cpx = rng.randint(0, 6, n).astype(float)
    expected = brute_force_cb(pred, truth, cpx)
    assert complexity_bias(pred, truth, cpx) == pytest.approx(expected)
    # Force many small chunks: the chunked path must give the same answer.
    monkeypatch.setattr(metrics, "_CB_CHUNK_ELEMENTS", 7 * n)
    assert complexity_bias(pred, truth, cpx) == pytest.approx(expected)


def test_complexity_bias_ignores_nan_archs():
    pred, truth, cpx = [2, 1, 4, 3, 0], [1, 2, 3, 4, 5], [10, 20, 30, 25, 30]
    with_nan = complexity_bias(pred + [float("nan")], truth + [9], cpx + [1])
    assert with_nan == pytest.approx(0.8)


# ----------------------------------------------------------------------------- rho_CC
def test_rho_cc_matches_direct_kendall_and_excludes_low_truth():
    pred = [40.0, 50.0, 45.0, 30.0, 9.0, 5.0]
    truth = [80.0, 70.0, 90.0, 60.0, 10.0, 0.0]
    cpx = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # min_truth=None drops only truth <= 0 (index 5)
    ratio = np.array(pred[:5]) / np.array(truth[:5])
    expected = stats.kendalltau(cpx[:5], ratio)[0]
    assert complexity_convergence_correlation(pred, truth, cpx) == pytest.approx(expected)
    # chance level 10 also drops index 4
    ratio = np.array(pred[:4]) / np.array(truth[:4])  # [0.5, 0.714, 0.5, 0.5]
    expected = stats.kendalltau(cpx[:4], ratio)[0]
    assert complexity_convergence_correlation(pred, truth, cpx, min_truth=10) == pytest.approx(expected)


def test_rho_cc_constant_ratio_is_nan():
    assert math.isnan(complexity_convergence_correlation([1, 2, 3], [2, 4, 6], [1, 2, 3]))


# ----------------------------------------------------------------------------- stratified subset
def test_stratified_subset_hand_case():
    truth = [0.0, 0.5, 1.0, 9.9, 10.0, 5.0]
    # 2 bins: [0, 5) holds 0, 1, 2 (best 2); [5, 10] holds 3, 4, 5 (best 4)
    assert stratified_subset(truth, n_bins=2) == [2, 4]
    # 10 bins of width 1: [0,1) -> {0,1} best 1; [1,2) -> {2}; [5,6) -> {5}; [9,10] -> {3,4} best 4
    assert stratified_subset(truth, n_bins=10) == [1, 2, 4, 5]


def test_stratified_subset_ties_and_degenerate():
    assert stratified_subset([3.0, 3.0, 1.0], n_bins=1) == [0]  # first of the tied best
    assert stratified_subset([7.0, 7.0], n_bins=400) == [0]
    assert stratified_subset([], n_bins=4) == []
    assert stratified_subset([1.0, float("nan"), 2.0], n_bins=4) == [0, 2]
    with pytest.raises(ConfigError):
        stratified_subset([1.0, 2.0], n_bins=0)


def test_stratified_subset_matches_numpy_histogram():
    truth = np.random.RandomState(0).uniform(10, 90, 500)
    subset = stratified_subset(truth, n_bins=50)
    counts, _ = np.histogram(truth, bins=50)
    assert len(subset) == int(np.count_nonzero(counts))
    assert subset == sorted(subset)


# ----------------------------------------------------------------------------- report
def test_ranking_report_keys_and_builtin_types():
    rng = np.random.RandomState(1)
    truth = rng.uniform(10, 80, 50)
    pred = truth + rng.normal(0, 5, 50)
    cpx = rng.randint(1000, 5000, 50)
    report = ranking_report(pred, truth, complexity=cpx, chance=10.0, n_bins=20)
    assert set(report) == {"kendall_tau", "spearman", "p_at_top5", "kendall_tau_stratified", "spearman_top10",
                           "spearman_top20", "n", "n_stratified", "cb", "rho_cc"}
    for key, value in report.items():
        expected_type = int if key in ("n", "n_stratified") else float
        assert type(value) is expected_type, (key, type(value))
    assert report["n"] == 50
    assert report["kendall_tau"] == pytest.approx(stats.kendalltau(pred, truth)[0])
    subset = stratified_subset(truth, n_bins=20)
    assert report["n_stratified"] == len(subset)
    assert report["kendall_tau_stratified"] == pytest.approx(stats.kendalltau(pred[subset], truth[subset])[0])
    top = np.argsort(-truth, kind="stable")[:10]  # top 20% of 50 archs by truth
    assert report["spearman_top20"] == pytest.approx(stats.spearmanr(pred[top], truth[top])[0])
    json.dumps(report)


def test_ranking_report_without_complexity():
    report = ranking_report([1, 2, 3], [1, 2, 3])
    assert "cb" not in report and "rho_cc" not in report
    assert report["kendall_tau"] == pytest.approx(1.0)
