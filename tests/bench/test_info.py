"""``nds bench info``: a table's size, noise ceiling and capacity signal, and a build in progress."""
from __future__ import annotations

import pytest

from nni_dynamic_supernet.bench.info import bench_info, capacity_signal
from nni_dynamic_supernet.ranking import GroundTruth
from nni_dynamic_supernet.ranking.tables import get_table


def test_v1_info_reports_capacity_signal_and_noise_ceiling():
    text = bench_info("v1")
    assert "noise ceiling (seed vs seed): Kendall tau 0.631" in text
    assert "capacity signal: Kendall tau(params, accuracy) -0.005 over 160 archs" in text
    assert capacity_signal(GroundTruth.load(get_table("v1").path)) == pytest.approx(-0.005, abs=5e-4)


def test_capacity_signal_needs_params():
    truth = GroundTruth.from_pairs([{"a": 1}, {"a": 2}, {"a": 3}], [10.0, 20.0, 30.0], space="s", space_kwargs={},
                                   dataset="d", metric="test_accuracy", recipe={}, seeds=[0])
    assert capacity_signal(truth) is None
    with_params = GroundTruth.from_pairs([{"a": 1}, {"a": 2}, {"a": 3}], [10.0, 20.0, 30.0], space="s",
                                         space_kwargs={}, dataset="d", metric="test_accuracy", recipe={}, seeds=[0],
                                         params=[3, 2, 1])
    assert capacity_signal(with_params) == pytest.approx(-1.0)


def test_v2_info_and_version():
    from nni_dynamic_supernet.data.digits_v2 import DIGITS_V2_CHECKSUMS, DIGITS_V2_VERSION

    text = bench_info("v2")
    assert "architectures: 150, seeds: [0, 1]" in text
    assert "noise ceiling (seed vs seed): Kendall tau 0.530" in text
    assert "capacity signal: Kendall tau(params, accuracy) 0.271 over 150 archs" in text
    table = GroundTruth.load(get_table("v2").path)
    # The table, its spec and the dataset module name one dataset version with the same arrays.
    assert get_table("v2").version == DIGITS_V2_VERSION == table.recipe["data"]["version"]
    assert table.recipe["data"]["checksums"] == DIGITS_V2_CHECKSUMS
    assert table.space_kwargs == get_table("v2").space_kwargs


def test_cli_info_takes_a_table_name(capsys):
    from nni_dynamic_supernet.cli import main

    assert main(["bench", "info", "v1"]) == 0
    assert "capacity signal" in capsys.readouterr().out
    assert main(["bench", "info", "--table", "v1"]) == 0
    assert main(["bench", "info", "v1", "--table", "v1"]) == 2
    assert main(["bench", "info", "v2"]) == 0 and "capacity signal" in capsys.readouterr().out
    assert main(["bench", "info"]) == 0 and "digits_hard_v2" in capsys.readouterr().out  # the default recipe's table
    assert main(["bench", "compare", "--recipes", "spos", "--pairs", "spos_calr"]) == 2
    assert "TECHNIQUE:BASELINE" in capsys.readouterr().err


def test_cli_info_of_an_unbuilt_or_building_v2(monkeypatch, tmp_path, capsys):
    from nni_dynamic_supernet.ranking import tables
    from nni_dynamic_supernet.bench.info import partial_path
    from nni_dynamic_supernet.cli import main

    monkeypatch.setattr(tables, "_RESOURCES", tmp_path)  # as in a checkout whose v2 table is not built yet
    assert main(["bench", "info", "v2"]) == 2 and "bench build --table v2" in capsys.readouterr().err
    partial_path(get_table("v2").path).write_text('{"header": {}}\n{"arch": {}, "seed": 0}\n')
    assert main(["bench", "info", "v2"]) == 0
    assert "build in progress, 1 (arch, seed) jobs finished" in capsys.readouterr().out
