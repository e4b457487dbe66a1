"""Tests of stand-alone training and of the resumable, parallel ground-truth table builder.

Training uses one epoch (``epochs=1`` / ``_epochs=1``) and two cheap archs (sample seed 1) so
the file runs in well under a minute on two cores; the protocol is otherwise the real one.
"""
from __future__ import annotations

import json
import math
import os

import pytest

from nni_dynamic_supernet.bench import build as build_mod
from nni_dynamic_supernet.bench.build import (
    NB201_LABELS,
    NB201_OPS,
    bench_info,
    build_ground_truth,
    partial_path,
    sample_architectures,
)
from nni_dynamic_supernet.bench.standalone import single_thread, train_standalone
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.ranking.ground_truth import GroundTruth, arch_key

SAMPLE_SEED = 1  # its first two archs have one conv each: fast to train
TINY = dict(n_archs=2, seeds=(0,), sample_seed=SAMPLE_SEED, progress=False, _epochs=1, table="v1")


@pytest.fixture
def count_jobs(monkeypatch):
    """Count the (arch, seed) jobs trained in this process (workers=1 runs them here)."""
    calls = []
    original = build_mod._run_job

    def counting(arch, seed, hparams, *rest):
        calls.append((arch_key(arch), seed))
        return original(arch, seed, hparams, *rest)

    monkeypatch.setattr(build_mod, "_run_job", counting)
    return calls


def test_sample_architectures_distinct_valid_stable():
    archs = sample_architectures(300, seed=7)
    assert len({arch_key(a) for a in archs}) == 300
    assert all(list(a) == list(NB201_LABELS) and set(a.values()) <= set(NB201_OPS) for a in archs)
    assert sample_architectures(300, seed=7) == archs
    assert sample_architectures(120, seed=7) == archs[:120]  # prefix-stable: tables can grow
    assert sample_architectures(10, seed=8) != archs[:10]
    with pytest.raises(ConfigError):
        sample_architectures(0, seed=0)
    with pytest.raises(ConfigError):
        sample_architectures(5 ** 6 + 1, seed=0)


def test_train_standalone_is_deterministic():
    arch = sample_architectures(1, SAMPLE_SEED)[0]
    with single_thread():
        first = train_standalone(arch, seed=3, epochs=1)
        second = train_standalone(arch, seed=3, epochs=1)
    assert set(first) == {"accuracy", "params", "seconds"}
    assert first["accuracy"] == second["accuracy"]
    assert first["params"] == second["params"] and isinstance(first["params"], int) and first["params"] > 0
    assert 0.0 <= first["accuracy"] <= 100.0
    # Accuracy is a count over the 2091 test images, in percent.
    assert math.isclose(first["accuracy"] * 2091 / 100, round(first["accuracy"] * 2091 / 100), abs_tol=1e-6)


def test_fast_model_construction_equals_the_protocols_freeze():
    # train_standalone builds the net under model_context instead of deepcopy(space.freeze(arch));
    # after the seeded reset both must be the same network, tensor for tensor.
    import torch

    from nni_dynamic_supernet.bench.standalone import _initialized_model

    for seed, arch in enumerate(sample_architectures(2, seed=3)):
        fast = _initialized_model(arch, seed, None)
        reference = _initialized_model(arch, seed, None, reference=True)
        assert [(n, type(m)) for n, m in fast.named_modules()] == \
            [(n, type(m)) for n, m in reference.named_modules()]
        a, b = fast.state_dict(), reference.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_train_standalone_rejects_bad_arch():
    arch = dict(sample_architectures(1, 0)[0])
    with pytest.raises(ConfigError, match="cell/0_1"):
        train_standalone({**arch, "cell/0_1": "conv_5x5"}, seed=0, epochs=1)
    del arch["cell/2_3"]
    with pytest.raises(ConfigError):
        train_standalone(arch, seed=0, epochs=1)


def test_resume_skips_finished_jobs_and_ignores_truncated_line(tmp_path, count_jobs):
    out = tmp_path / "table.json"
    partial = build_ground_truth(out, limit=1, **TINY)
    sidecar = partial_path(out)
    assert not out.exists() and sidecar.exists()
    assert len(partial) == 1 and len(count_jobs) == 1
    lines = sidecar.read_text().splitlines()
    assert "header" in json.loads(lines[0]) and len(lines) == 2
    first_job = count_jobs[0]

    # A crash in the middle of a write leaves a fragment without a newline.
    with open(sidecar, "a") as fh:
        fh.write('{"arch": {"cell/0_1": "no')
    table = build_ground_truth(out, **TINY)
    assert len(count_jobs) == 2 and count_jobs[1] != first_job  # only the missing job ran
    assert out.exists() and not sidecar.exists()
    loaded = GroundTruth.load(out)
    assert loaded == table and len(loaded) == 2
    assert [e["arch"] for e in loaded.entries] == sample_architectures(2, SAMPLE_SEED)
    assert loaded.space == "nas_bench_201" and loaded.dataset == "digits_hard"
    assert loaded.metric == "test_accuracy" and loaded.seeds == [0]
    assert loaded.space_kwargs == dict(channels=4, cells_per_stage=3, num_classes=10, in_channels=3, input_size=8)
    recipe = loaded.recipe
    assert recipe["sample_seed"] == SAMPLE_SEED and "RandomState" in recipe["sampling"]
    assert recipe["protocol"]["epochs"] == 1 and recipe["comparable_with_shipped_table"] is False
    assert set(recipe["data"]["checksums"]) == {"train", "val", "test"} and recipe["torch_version"]

    # A finished table is reused: rebuilding trains nothing.
    build_ground_truth(out, **TINY)
    assert len(count_jobs) == 2


def test_final_write_is_atomic_and_failure_keeps_sidecar(tmp_path, monkeypatch, count_jobs):
    out = tmp_path / "table.json"
    build_ground_truth(out, **{**TINY, "n_archs": 1})  # a previous, smaller table of the same protocol
    previous = out.read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("disk full")

    # Patched on the os module itself: whichever helper the table's save() uses calls it.
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        build_ground_truth(out, **TINY)
    # The old file is untouched, no temp file is left, and the finished jobs are kept.
    assert out.read_bytes() == previous
    assert sorted(os.listdir(tmp_path)) == ["table.json", partial_path(out).name]
    assert len(count_jobs) == 2

    monkeypatch.setattr(os, "replace", real_replace)
    build_ground_truth(out, **TINY)
    assert len(count_jobs) == 2  # nothing retrained
    assert len(GroundTruth.load(out)) == 2 and not partial_path(out).exists()


def test_results_do_not_depend_on_workers(tmp_path):
    one = build_ground_truth(tmp_path / "one.json", workers=1, **TINY)
    two = build_ground_truth(tmp_path / "two.json", workers=2, **TINY)
    assert one.entries == two.entries
    assert one.entries[0]["per_seed"]["0"] != one.entries[1]["per_seed"]["0"] or \
        one.entries[0]["params"] != one.entries[1]["params"]


def test_sidecar_of_another_protocol_is_refused(tmp_path):
    out = tmp_path / "table.json"
    partial_path(out).write_text(json.dumps({"header": {"format": "nds-bench-partial/1",
                                                        "fingerprint": {"protocol": {"epochs": 99}}}}) + "\n")
    with pytest.raises(ConfigError, match="another protocol"):
        build_ground_truth(out, **TINY)


@pytest.mark.parametrize("kwargs", [dict(workers=0), dict(seeds=()), dict(seeds=(0, 0)), dict(limit=-1),
                                    dict(n_archs=0)])
def test_bad_build_arguments(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        build_ground_truth(tmp_path / "t.json", **{**TINY, **kwargs})
    with pytest.raises(ConfigError, match="does not exist"):
        build_ground_truth(tmp_path / "missing" / "t.json", **TINY)


def test_bench_info_reports_spread_and_noise_ceiling(tmp_path):
    archs = sample_architectures(40, seed=0)
    per_seed = [{0: 20.0 + i, 1: 20.0 + i + (3.0 if i % 4 == 0 else -1.0)} for i in range(40)]
    table = GroundTruth.from_pairs(archs, [sum(p.values()) / 2 for p in per_seed], space="nas_bench_201",
                                   dataset="digits_hard", metric="test_accuracy", seeds=[0, 1],
                                   per_seed=per_seed)
    path = table.save(tmp_path / "t.json")
    info = bench_info(path)
    assert "architectures: 40" in info and "seeds: [0, 1]" in info
    assert "p10" in info and "p50" in info and "p90" in info and "min" in info and "max" in info
    ceiling = table.noise_ceiling()
    line = next(line for line in info.splitlines() if line.startswith("noise ceiling"))
    assert f"{ceiling['kendall_tau']:.3f} overall" in line
    assert f"{ceiling['kendall_tau_stratified']:.3f} on the stratified subset" in line
    assert (f"perfect ranker against the mean of 2 seeds (normal-noise model): Kendall tau "
            f"{ceiling['kendall_tau_truth_vs_mean']:.3f}") in info
    assert "mean of 2 seeds vs mean" not in info  # split halves need 4 seeds
    four = GroundTruth.from_pairs(archs, [sum(p.values()) / 2 for p in per_seed], space="nas_bench_201",
                                  dataset="digits_hard", metric="test_accuracy", seeds=[0, 1, 2, 3],
                                  per_seed=[{**p, 2: p[0] + 0.5, 3: p[1] - 0.5} for p in per_seed])
    four_ceiling = four.noise_ceiling()
    assert (f"(mean of 2 seeds vs mean of the other 2): Kendall tau {four_ceiling['split_half_kendall_tau']:.3f} "
            f"measured, {four_ceiling['split_half_kendall_tau_predicted']:.3f} by the normal-noise model"
            in bench_info(four.save(tmp_path / "four.json")))
    assert f"{four_ceiling['kendall_tau_truth_vs_mean_split_half']:.3f} from the halves" in bench_info(tmp_path / "four.json")

    pending = tmp_path / "pending.json"
    partial_path(pending).write_text('{"header": {}}\n{"arch": {}, "seed": 0}\n')
    assert "in progress, 1" in bench_info(pending)
    with pytest.raises(ConfigError):
        bench_info(tmp_path / "nothing.json")


def test_v2_build_follows_the_v2_recipe_and_keeps_v1_fingerprints(tmp_path):
    from nni_dynamic_supernet.ranking.tables import get_table
    from nni_dynamic_supernet.data.digits_v2 import DIGITS_V2_CHECKSUMS

    table = build_ground_truth(tmp_path / "v2.json", **{**TINY, "n_archs": 1, "table": "v2"})
    assert table.dataset == "digits_hard_v2" and table.space_kwargs == get_table("v2").space_kwargs
    assert table.recipe["table"] == "v2" and table.recipe["data"]["checksums"] == DIGITS_V2_CHECKSUMS
    assert table.recipe["data"]["checksums_match_reference"] is True
    assert table.entries[0]["params"] > 0
    # The shipped v1 table's fingerprint is what a v1 build computes, so it can still be grown.
    v1 = GroundTruth.load(get_table("v1").path)
    checksums, _ = get_table("v1").checksums()
    assert build_mod._fingerprint({"epochs": 13}, checksums, get_table("v1")) == v1.recipe["fingerprint"]
