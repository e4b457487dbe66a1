"""Tests of the NAS-Bench-201 adapter on a tiny database built with NNI's own peewee models.

No download: the fixture writes a handful of configs and trial stats into an SQLite file
with NNI's schema, and the adapter is pointed at its directory.
"""
from __future__ import annotations

import pytest

from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking import GroundTruth, arch_key
from nni_dynamic_supernet.ranking.nasbench201_db import (
    NB201_DB_FILENAME,
    _import_nni_models,
    from_nni_arch,
    ground_truth_from_nasbench201,
    locate_nasbench201_db,
    to_nni_arch,
)

NNI_ARCHS = [
    {"0_1": "conv_3x3", "0_2": "conv_3x3", "1_2": "conv_3x3", "0_3": "conv_3x3", "1_3": "conv_3x3", "2_3": "conv_3x3"},
    {"0_1": "none", "0_2": "skip_connect", "1_2": "conv_1x1", "0_3": "avg_pool_3x3", "1_3": "none", "2_3": "conv_3x3"},
    {"0_1": "skip_connect", "0_2": "skip_connect", "1_2": "skip_connect", "0_3": "skip_connect", "1_3": "skip_connect",
     "2_3": "skip_connect"},
    {"0_1": "none", "0_2": "none", "1_2": "none", "0_3": "none", "1_3": "none", "2_3": "none"},
]
# (test_acc per seed) for cifar10 at 200 epochs; arch 2 has only seed 777
CIFAR10_200 = [{777: 94.0, 888: 93.0}, {777: 80.0, 888: 82.0}, {777: 60.0}, {777: 10.0, 888: 10.0}]
PARAMS_M = [1.532, 0.5, 0.073, 0.073]


def _require_nni_benchmark():
    """Skip unless NNI's benchmark models import (they need peewee<4)."""
    try:
        _import_nni_models()
    except ConfigError as exc:
        pytest.skip(str(exc))
    import nni.nas.benchmark.nasbench201 as nb201

    return nb201


def _stats(seed, acc, params):
    return dict(seed=seed, train_acc=acc + 5, valid_acc=acc - 1, test_acc=acc, ori_test_acc=acc + 0.5,
                train_loss=0.1, valid_loss=0.2, test_loss=0.3, ori_test_loss=0.3, parameters=params,
                latency=0.01, flops=10.0, training_time=100.0, valid_evaluation_time=1.0,
                test_evaluation_time=1.0, ori_test_evaluation_time=1.0)


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory):
    nb201 = _require_nni_benchmark()
    from playhouse.sqlite_ext import SqliteExtDatabase

    models = [nb201.Nb201TrialConfig, nb201.Nb201TrialStats, nb201.Nb201IntermediateStats]
    directory = tmp_path_factory.mktemp("nasbenchmark")
    db = SqliteExtDatabase(str(directory / NB201_DB_FILENAME))
    with db.bind_ctx(models):
        db.create_tables(models)
        for arch, per_seed, params in zip(NNI_ARCHS, CIFAR10_200, PARAMS_M):
            config = nb201.Nb201TrialConfig.create(arch=arch, num_epochs=200, dataset="cifar10",
                                                   num_channels=16, num_cells=5)
            for seed, acc in per_seed.items():
                nb201.Nb201TrialStats.create(config=config, **_stats(seed, acc, params))
        # rows that the default query must ignore: other dataset, other epoch count
        other = nb201.Nb201TrialConfig.create(arch=NNI_ARCHS[0], num_epochs=200, dataset="cifar100",
                                              num_channels=16, num_cells=5)
        nb201.Nb201TrialStats.create(config=other, **_stats(777, 70.0, 1.532))
        short = nb201.Nb201TrialConfig.create(arch=NNI_ARCHS[0], num_epochs=12, dataset="cifar10",
                                              num_channels=16, num_cells=5)
        nb201.Nb201TrialStats.create(config=short, **_stats(777, 50.0, 1.532))
    db.close()
    return directory


def test_label_mapping_round_trip():
    ours = from_nni_arch(NNI_ARCHS[1])
    assert set(ours) == {"cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"}
    assert to_nni_arch(ours) == NNI_ARCHS[1]
    with pytest.raises(ConfigError):
        to_nni_arch({**ours, "cell/0_1": "conv_5x5"})
    with pytest.raises(ConfigError):
        to_nni_arch({"cell/0_1": "none"})


def test_missing_database_names_db_dir_and_download(tmp_path):
    with pytest.raises(ConfigError) as err:
        ground_truth_from_nasbench201(db_dir=tmp_path / "nowhere")
    assert err.value.field == "ground_truth.db_dir"
    assert "python -m nni.nas.benchmark.download nasbench201" in str(err.value)
    assert not (tmp_path / "nowhere").exists()  # nothing was created


def test_reads_fixture_database(db_dir):
    table = ground_truth_from_nasbench201(dataset="cifar10", num_epochs=200, metric="test_acc", db_dir=db_dir)
    assert isinstance(table, GroundTruth)
    assert table.space == "nas_bench_201" and table.dataset == "cifar10" and table.metric == "test_acc"
    assert table.space_kwargs == {"num_labels": 10, "stem_out_channels": 16, "num_modules_per_stack": 5}
    assert table.seeds == [777, 888]
    assert len(table) == 4
    for nni_arch, per_seed, params in zip(NNI_ARCHS, CIFAR10_200, PARAMS_M):
        arch = from_nni_arch(nni_arch)
        assert table.accuracy(arch) == pytest.approx(sum(per_seed.values()) / len(per_seed))
        entry = table.entries[[arch_key(a) for a in table.archs()].index(arch_key(arch))]
        assert entry["per_seed"] == {str(s): v for s, v in per_seed.items()}
        assert entry["params"] == round(params * 1e6)
    matrix = table.per_seed_matrix()
    assert matrix.shape == (4, 2)
    assert table.noise_ceiling()["n_seed_pairs"] == 1


def test_filters_dataset_epochs_metric_and_archs(db_dir):
    arch0 = from_nni_arch(NNI_ARCHS[0])
    c100 = ground_truth_from_nasbench201(dataset="cifar100", db_dir=db_dir)
    assert len(c100) == 1 and c100.accuracy(arch0) == pytest.approx(70.0)
    assert c100.space_kwargs["num_labels"] == 100
    short = ground_truth_from_nasbench201(num_epochs=12, db_dir=db_dir)
    assert short.accuracy(arch0) == pytest.approx(50.0)
    valid = ground_truth_from_nasbench201(metric="valid_acc", db_dir=db_dir)
    assert valid.accuracy(arch0) == pytest.approx(92.5)
    subset = ground_truth_from_nasbench201(db_dir=db_dir, archs=[arch0, from_nni_arch(NNI_ARCHS[2])])
    assert len(subset) == 2
    missing = {**arch0, "cell/2_3": "avg_pool_3x3"}
    with pytest.raises(ConfigError) as err:
        ground_truth_from_nasbench201(db_dir=db_dir, archs=[missing])
    assert err.value.field == "ground_truth.archs"


def test_env_var_and_file_path(db_dir, monkeypatch):
    monkeypatch.setenv("NASBENCHMARK_DIR", str(db_dir))
    assert locate_nasbench201_db() == db_dir / NB201_DB_FILENAME
    assert len(ground_truth_from_nasbench201()) == 4
    assert locate_nasbench201_db(db_dir / NB201_DB_FILENAME) == db_dir / NB201_DB_FILENAME


def test_bad_arguments_and_corrupt_file(db_dir, tmp_path):
    for kwargs, field in [({"dataset": "cifar11"}, "ground_truth.dataset"),
                          ({"num_epochs": 50}, "ground_truth.num_epochs"),
                          ({"metric": "acc"}, "ground_truth.metric")]:
        with pytest.raises(ConfigError) as err:
            ground_truth_from_nasbench201(db_dir=db_dir, **kwargs)
        assert err.value.field == field
    _require_nni_benchmark()
    (tmp_path / NB201_DB_FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError) as err:
        ground_truth_from_nasbench201(db_dir=tmp_path)
    assert err.value.field == "ground_truth.db_dir"


def test_table_round_trips_through_json(db_dir, tmp_path):
    table = ground_truth_from_nasbench201(db_dir=db_dir)
    loaded = GroundTruth.load(table.save(tmp_path / "nb201.json"))
    assert loaded == table
