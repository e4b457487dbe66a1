"""Tests of the ground-truth table: format, atomic I/O, validation, noise ceiling, matching."""
from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking.ground_truth import FORMAT, GroundTruth, arch_key
from nni_dynamic_supernet.ranking.matching import match_predictions
from nni_dynamic_supernet.ranking.metrics import stratified_subset

OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
LABELS = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]


def make_archs(n, seed=0):
    rng = np.random.RandomState(seed)
    archs, seen = [], set()
    while len(archs) < n:
        arch = {label: OPS[rng.randint(len(OPS))] for label in LABELS}
        if arch_key(arch) not in seen:
            seen.add(arch_key(arch))
            archs.append(arch)
    return archs


def make_table(n=30, seeds=(0, 1, 2), missing=True):
    rng = np.random.RandomState(42)
    archs = make_archs(n)
    base = rng.uniform(20, 80, n)
    per_seed = []
    for i in range(n):
        values = {s: float(base[i] + rng.normal(0, 4)) for s in seeds}
        if missing and i == 3:
            values.pop(seeds[-1])  # one arch lacks a seed
        per_seed.append(values)
    acc = [float(np.mean(list(v.values()))) for v in per_seed]
    return GroundTruth.from_pairs(archs, acc, space="nas_bench_201", space_kwargs={"stem_out_channels": 4},
                                  dataset="digits_hard", metric="test_accuracy", recipe={"epochs": 13},
                                  seeds=list(seeds), per_seed=per_seed, params=list(range(1000, 1000 + n)))


def test_arch_key_is_order_independent():
    assert arch_key({"b": 1, "a": "x"}) == arch_key({"a": "x", "b": 1}) == '{"a":"x","b":1}'


def test_round_trip(tmp_path):
    table = make_table()
    path = table.save(tmp_path / "gt.json")
    loaded = GroundTruth.load(path)
    assert loaded == table
    assert loaded.source == str(path)
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    assert set(data) == {"format", "space", "space_kwargs", "dataset", "metric", "recipe", "seeds", "entries"}
    assert data["entries"][0]["per_seed"].keys() == {"0", "1", "2"}
    assert loaded.accuracy(table.archs()[5]) == pytest.approx(table.accuracies()[5])
    assert loaded.accuracy({label: "none" for label in LABELS[:2]}) is None
    assert loaded.params() == [float(p) for p in range(1000, 1030)]


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path, monkeypatch):
    table = make_table()
    path = tmp_path / "gt.json"
    table.save(path)
    assert os.listdir(tmp_path) == ["gt.json"]
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    smaller = GroundTruth.from_pairs(table.archs()[:2], table.accuracies()[:2])
    with pytest.raises(OSError):
        smaller.save(path)
    # the old table is intact and the temp file was removed
    assert os.listdir(tmp_path) == ["gt.json"]
    assert path.read_text() == before


def _write(tmp_path, data):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _good_dict():
    return make_table(n=3).to_dict()


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d.pop("metric"), "metric"),
    (lambda d: d.update(format="something/2"), "format"),
    (lambda d: d["entries"][1].update(accuracy="high"), "entries[1].accuracy"),
    (lambda d: d["entries"][2].pop("arch"), "entries[2].arch"),
    (lambda d: d["entries"][0]["per_seed"].update({"0": None}), "entries[0].per_seed.0"),
    (lambda d: d.update(seeds="0,1"), "seeds"),
    (lambda d: d["entries"].append(dict(d["entries"][0])), "entries[3].arch"),
])
def test_bad_file_names_file_and_key(tmp_path, mutate, key):
    data = _good_dict()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        GroundTruth.load(path)
    assert err.value.field == f"{path}:{key}"
    assert "\n" not in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError) as err:
        GroundTruth.load(tmp_path / "missing.json")
    assert err.value.field == "ground_truth" and "missing.json" in str(err.value)
    path = _write(tmp_path, "{not json")
    with pytest.raises(ConfigError) as err:
        GroundTruth.load(path)
    assert err.value.field == "ground_truth" and "not valid JSON" in str(err.value)


def test_per_seed_matrix_has_nan_for_missing_seed():
    table = make_table()
    matrix = table.per_seed_matrix()
    assert matrix.shape == (30, 3)
    assert math.isnan(matrix[3, 2])
    assert np.isnan(matrix).sum() == 1
    assert matrix[0, 1] == table.entries[0]["per_seed"]["1"]
    assert table.seed_accuracies(table.archs()[3]) == {k: float(v) for k, v in table.entries[3]["per_seed"].items()}
    assert set(table.seed_accuracies(table.archs()[3])) == {"0", "1"}  # the missing seed is absent, not NaN
    assert table.seed_accuracies({"cell/0_1": "no such op"}) is None


def test_noise_ceiling_equals_direct_scipy():
    table = make_table(n=60)
    matrix = table.per_seed_matrix()
    mean = np.array(table.accuracies())
    taus, strat, rhos, diffs = [], [], [], []
    for a, b in itertools.combinations(range(3), 2):
        ok = ~np.isnan(matrix[:, a]) & ~np.isnan(matrix[:, b])
        x, y = matrix[ok, a], matrix[ok, b]
        sub = stratified_subset(mean[ok], n_bins=20)
        taus.append(stats.kendalltau(x, y)[0])
        strat.append(stats.kendalltau(x[sub], y[sub])[0])
        rhos.append(stats.spearmanr(x, y)[0])
        diffs.append(np.mean(np.abs(x - y)))
    ceiling = table.noise_ceiling(n_bins=20)
    assert ceiling["kendall_tau"] == pytest.approx(np.mean(taus))
    assert ceiling["kendall_tau_stratified"] == pytest.approx(np.mean(strat))
    assert ceiling["spearman"] == pytest.approx(np.mean(rhos))
    assert ceiling["mean_abs_diff"] == pytest.approx(np.mean(diffs))
    assert ceiling["n_seed_pairs"] == 3
    assert all(type(v) in (float, int) for v in ceiling.values())


def test_noise_ceiling_single_seed_is_nan():
    table = make_table(n=5, seeds=(0,), missing=False)
    ceiling = table.noise_ceiling()
    assert math.isnan(ceiling["kendall_tau"]) and ceiling["n_seed_pairs"] == 0


def test_split_half_ceiling_averages_the_three_splits_of_four_seeds():
    table = make_table(n=40, seeds=(0, 1, 2, 3))  # arch 3 lacks seed 3: left out of every split
    matrix = np.delete(table.per_seed_matrix(), 3, axis=0)
    expected = np.mean([stats.kendalltau(matrix[:, a].mean(axis=1), matrix[:, b].mean(axis=1))[0]
                        for a, b in (([0, 1], [2, 3]), ([0, 2], [1, 3]), ([0, 3], [1, 2]))])
    ceiling = table.noise_ceiling()
    assert ceiling["split_half_seeds"] == 2
    assert ceiling["split_half_kendall_tau"] == pytest.approx(expected)
    # Averaging seeds removes noise, so halves agree better than single seeds do.
    assert ceiling["split_half_kendall_tau"] > ceiling["kendall_tau"]
    for seeds in ((0, 1), (0, 1, 2)):  # no equal halves of two or more seeds
        odd = make_table(n=10, seeds=seeds).noise_ceiling()
        assert math.isnan(odd["split_half_kendall_tau"]) and odd["split_half_seeds"] == 0
        assert math.isnan(odd["kendall_tau_truth_vs_mean_split_half"])


@pytest.mark.parametrize("noise", [0.5, 1.0])
def test_model_ceiling_matches_a_simulated_table(noise):
    """Truth plus normal seed noise: the model's taus match the simulated ones."""
    rng = np.random.RandomState(0)
    n, seeds = 1500, (0, 1, 2, 3)
    truth = rng.normal(0, 1, n)
    per_seed = [{s: float(t + rng.normal(0, noise)) for s in seeds} for t in truth]
    acc = [float(np.mean(list(v.values()))) for v in per_seed]
    table = GroundTruth.from_pairs(make_archs(n, seed=1), acc, space="nas_bench_201", dataset="sim",
                                   metric="test_accuracy", seeds=list(seeds), per_seed=per_seed)
    ceiling = table.noise_ceiling()
    assert ceiling["kendall_tau_truth_vs_mean"] == pytest.approx(stats.kendalltau(truth, acc)[0], abs=0.02)
    assert ceiling["kendall_tau_truth_vs_mean_split_half"] == pytest.approx(stats.kendalltau(truth, acc)[0], abs=0.02)
    assert ceiling["split_half_kendall_tau_predicted"] == pytest.approx(ceiling["split_half_kendall_tau"], abs=0.02)
    assert ceiling["kendall_tau"] < ceiling["split_half_kendall_tau"] < ceiling["kendall_tau_truth_vs_mean"]


def test_restrict_keeps_only_valid_archs():
    table = make_table()
    space = {label: ["conv_3x3", "skip_connect", "none"] for label in LABELS}
    sub = table.restrict(space)
    assert 0 < len(sub) < len(table)
    for arch in sub.archs():
        assert all(op in space[label] for label, op in arch.items())
    assert len(table.restrict({"other/0": ["a"]})) == 0


def test_from_pairs_validates():
    with pytest.raises(ConfigError):
        GroundTruth.from_pairs([{"a": "x"}], [1.0, 2.0])
    with pytest.raises(ConfigError) as err:
        GroundTruth.from_pairs([{"a": "x"}], [float("nan")])
    assert err.value.field.endswith("entries[0].accuracy")


def test_match_predictions():
    table = make_table()
    archs = table.archs()
    other = {label: "none" for label in ["x/0", "x/1"]}
    preds = [{"arch": archs[2], "accuracy": 50.0}, {"arch": other, "accuracy": 10.0},
             {"arch": archs[0], "accuracy": 60.0, "params": 3},
             {"arch": archs[2], "accuracy": 99.0}]  # duplicate: first wins
    matched, pred, true = match_predictions(preds, table)
    assert [arch_key(m["arch"]) for m in matched] == [arch_key(archs[2]), arch_key(archs[0])]
    assert pred.tolist() == [50.0, 60.0]
    assert true.tolist() == [table.accuracies()[2], table.accuracies()[0]]


def test_match_predictions_disjoint_is_config_error(tmp_path):
    table = make_table()
    path = table.save(tmp_path / "gt.json")
    table = GroundTruth.load(path)
    nni_style = [{"arch": {k.split("/")[1]: v for k, v in table.archs()[0].items()}, "accuracy": 1.0}]
    with pytest.raises(ConfigError) as err:
        match_predictions(nni_style, table)
    assert err.value.field == "ground_truth"
    assert err.value.value == str(path)
    assert "shares no architecture" in str(err.value)
