"""Trivial rankers of a table and the partial Kendall tau given parameter count."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nni_dynamic_supernet.bench.tables import get_table
from nni_dynamic_supernet.ranking import GroundTruth, kendall_tau
from nni_dynamic_supernet.ranking import baselines as baselines_module
from nni_dynamic_supernet.ranking.baselines import (baseline_tau, partial_kendall_tau, ranking_baselines,
                                                    table_baseline_scores)


def test_a_ranking_by_size_has_no_information_beyond_size() -> None:
    rng = np.random.RandomState(0)
    size = rng.permutation(40).astype(float)
    truth = size + 5 * rng.randn(40)
    # Predictions that are the size (or any increasing function of it) carry nothing beyond it.
    assert partial_kendall_tau(size, truth, size) == 0.0 and partial_kendall_tau(2 * size + 1, truth, size) == 0.0
    # Undefined when the control orders the ground truth itself perfectly.
    assert math.isnan(partial_kendall_tau(truth, size, size))
    # Predictions that add information beyond size score above 0; the formula is Kendall's (1942).
    pred = truth + 0.5 * rng.randn(40)
    pt, pc, tc = kendall_tau(pred, truth), kendall_tau(pred, size), kendall_tau(truth, size)
    assert partial_kendall_tau(pred, truth, size) == pytest.approx((pt - pc * tc) / math.sqrt((1 - pc ** 2) * (1 - tc ** 2)))
    assert partial_kendall_tau(pred, truth, size) > 0.3


def test_random_tie_breaks_lower_a_tied_ranker_and_unscored_archs_rank_last() -> None:
    truth = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    tied = baseline_tau([0, 0, 0, 1, 1, 1], truth)
    assert tied["kendall_tau"] == pytest.approx(kendall_tau([0, 0, 0, 1, 1, 1], truth))
    assert tied["kendall_tau_random_ties"] < tied["kendall_tau"] and tied["distinct"] == 2
    unscored = baseline_tau([float("nan"), 2, 3, 4, 5, float("-inf")], truth)
    assert unscored["unscored"] == 2 and math.isfinite(unscored["kendall_tau"])
    assert unscored["kendall_tau"] == pytest.approx(kendall_tau([0, 2, 3, 4, 5, 0], truth))


def test_the_v2_26_parameter_count_baseline() -> None:
    """The numbers the docs quote: tau-b 0.443, 0.424 with ties broken at random (17 distinct counts)."""
    truth = GroundTruth.load(get_table("v2_26").path)
    block = ranking_baselines(truth.accuracies(), params=truth.params(), predictions=truth.params())
    assert block["params"]["kendall_tau"] == pytest.approx(0.443, abs=5e-4)
    assert block["params"]["kendall_tau_random_ties"] == pytest.approx(0.424, abs=5e-3)
    assert block["params"]["distinct"] == 17
    assert block["complexity_controlled"]["partial_kendall_tau_given_params"] == 0.0


def test_table_scores_are_cached(tmp_path, monkeypatch) -> None:
    from nni_dynamic_supernet.data import build_splits
    monkeypatch.setenv("NDS_CACHE_DIR", str(tmp_path))
    archs = GroundTruth.load(get_table("v1").path).archs()[:3]
    kwargs = dict(get_table("v1").space_kwargs)
    train = build_splits("digits_hard", split_seed=0).train
    scores, missing = table_baseline_scores(archs, "nas_bench_201", kwargs, train, params=[1.0, 2.0, 3.0])
    assert set(scores) == {"params", "synflow", "jacov", "nwot"} and "flops" in missing
    assert all(len(v) == 3 for v in scores.values())

    def no_computing(*args, **kwargs):
        raise AssertionError("cached scores were computed again")
    monkeypatch.setattr(baselines_module, "proxy_scores", no_computing)
    again, _ = table_baseline_scores(archs, "nas_bench_201", kwargs, train, params=[1.0, 2.0, 3.0])
    assert json_equal(again, scores)


def json_equal(a: dict, b: dict) -> bool:
    import json
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.slow
@pytest.mark.parametrize("table", ["v2_26", "v1"])
def test_the_shipped_proxy_scores_are_what_the_proxies_compute(table: str, tmp_path, monkeypatch) -> None:
    """The scores under _resources/baseline_scores are recomputed exactly (about a minute a table)."""
    import json as json_module
    from nni_dynamic_supernet.data import build_splits
    monkeypatch.setenv("NDS_CACHE_DIR", str(tmp_path))
    spec = get_table(table)
    truth = GroundTruth.load(spec.path)
    train = build_splits(spec.dataset, split_seed=0).train
    fresh, _ = table_baseline_scores(truth.archs(), "nas_bench_201", spec.space_kwargs, train, cache=False)
    shipped = {p.name: json_module.loads(p.read_text()) for p in baselines_module.SHIPPED_SCORES.glob("*.json")}
    # The cache stores a non-finite score (jacov's NaN, nwot's -inf) as null.
    finite = {k: [v if math.isfinite(v) else None for v in fresh[k]] for k in ("synflow", "jacov", "nwot")}
    assert any(all(finite[k] == scores[k] for k in finite) for scores in shipped.values())


def test_a_run_on_an_embedded_table_finds_the_shipped_scores(tmp_path, monkeypatch) -> None:
    from nni_dynamic_supernet.data import build_splits
    monkeypatch.setenv("NDS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(baselines_module, "proxy_scores", lambda *a, **k: pytest.fail("computed, not found"))
    spec = get_table("v2_26")
    truth = GroundTruth.load(spec.path)
    train = build_splits(spec.dataset, split_seed=0).train
    scores, missing = table_baseline_scores(truth.archs(), "nas_bench_201", spec.space_kwargs, train,
                                            params=truth.params())
    assert not missing.keys() & {"synflow", "jacov", "nwot"} and len(scores["synflow"]) == 150
