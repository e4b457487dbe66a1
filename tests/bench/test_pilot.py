"""The design pilot's summary: capacity signal, noise ceiling and convergence from job records."""
from __future__ import annotations

import json

import pytest

from nni_dynamic_supernet.bench.build import sample_architectures
from nni_dynamic_supernet.bench.pilot import pilot_design, pilot_summary
from nni_dynamic_supernet.data.digits_v2 import DigitsDesign


def test_summary_of_known_records():
    archs = sample_architectures(5, seed=0)
    records = []
    for i, arch in enumerate(archs):
        # Accuracy grows with params; seed 1 swaps the last two archs; 2E keeps seed 0's order.
        records.append({"arch": arch, "seed": 0, "epochs": 3, "accuracy": 50.0 + i, "params": 100 * i, "seconds": 1.0})
        records.append({"arch": arch, "seed": 1, "epochs": 3, "accuracy": 50.0 + (i if i < 3 else 7 - i),
                        "params": 100 * i, "seconds": 3.0})
        records.append({"arch": arch, "seed": 0, "epochs": 6, "accuracy": 60.0 + i, "params": 100 * i, "seconds": 2.0})
    out = pilot_summary(records, 3, [0, 1])
    assert out["n_archs"] == 5 and out["n_archs_2e"] == 5
    assert out["noise_ceiling"] == pytest.approx(0.8)  # one discordant pair of 10
    assert out["convergence_tau"] == pytest.approx(1.0)
    assert out["capacity_tau_2e"] == pytest.approx(1.0)
    assert out["seconds_per_job"] == pytest.approx(2.0)


def test_pilot_resumes_from_its_log(tmp_path):
    log = tmp_path / "pilot.jsonl"
    kwargs = dict(channels=2, cells_per_stage=1, num_classes=10, in_channels=3, input_size=8)
    design = DigitsDesign()
    first = pilot_design(design, kwargs, 1, log, n_archs=3, seeds=(0, 1), sample_seed=1)
    assert first["n_archs"] == 3 and first["n_archs_2e"] == 3 and first["epochs"] == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 9
    again = pilot_design(design, kwargs, 1, log, n_archs=3, seeds=(0, 1), sample_seed=1)
    assert log.read_text().splitlines() == lines  # nothing retrained
    assert again["noise_ceiling"] == first["noise_ceiling"]
    assert {json.loads(line)["epochs"] for line in lines} == {1, 2}
