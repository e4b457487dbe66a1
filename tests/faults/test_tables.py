"""Existing tables and comparisons: never shrunk, never mixed with another protocol, never silently replaced."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nni_dynamic_supernet.bench import build as build_mod
from nni_dynamic_supernet.ranking.ground_truth import GroundTruth

from ..bench.tiny_compare import tiny_config
from .helpers import assert_nothing_half_written, assert_one_line, run_nds, snapshot


@pytest.fixture
def fast_jobs(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stand-alone jobs of one epoch (the protocol stays the recorded one), counted."""
    calls: list = []
    original = build_mod._run_job

    def job(arch, seed, hparams, *rest):  # type: ignore[no-untyped-def]
        calls.append((json.dumps(arch, sort_keys=True), seed))
        return original(arch, seed, {**hparams, "epochs": 1}, *rest)

    monkeypatch.setattr(build_mod, "_run_job", job)
    return calls


def _build(out: Path, archs: int, seeds: list, sample_seed: int = 1, table: str = "v1") -> tuple[int, str, str]:
    return run_nds(["bench", "build", "--out", out, "--archs", str(archs), "--seeds", *map(str, seeds),
                    "--sample-seed", str(sample_seed), "--table", table, "--quiet"])


@pytest.fixture
def built(tmp_path: Path, fast_jobs: list) -> Path:
    """A 2-arch x 2-seed table of the v1 protocol."""
    out = tmp_path / "table.json"
    code, _, err = _build(out, 2, [0, 1])
    assert code == 0, err
    assert len(fast_jobs) == 4
    return out


def test_a_smaller_request_keeps_every_entry_and_the_file(built: Path, fast_jobs: list) -> None:
    before = built.read_bytes()
    code, stdout, err = _build(built, 1, [0])
    assert code == 0, err
    assert built.read_bytes() == before and len(fast_jobs) == 4  # nothing retrained, nothing rewritten
    table = GroundTruth.load(built)
    assert len(table) == 2 and table.seeds == [0, 1]


def test_a_larger_request_grows_the_table_without_losing_seeds(built: Path, fast_jobs: list) -> None:
    old = GroundTruth.load(built)
    code, _, err = _build(built, 3, [0])  # one more arch, fewer seeds than the table holds
    assert code == 0, err
    grown = GroundTruth.load(built)
    assert len(grown) == 3 and grown.seeds == [0, 1]
    assert grown.entries[:2] == old.entries and len(fast_jobs) == 4 + 2
    assert_nothing_half_written(built.parent)


@pytest.mark.parametrize("argv, expected", [
    (["--table", "v2"], "another protocol"),
    (["--sample-seed", "5"], "--sample-seed"),
], ids=["other-protocol", "other-sample"])
def test_a_table_of_another_protocol_or_sample_is_refused(built: Path, fast_jobs: list, argv: list,
                                                          expected: str) -> None:
    before = snapshot(built.parent)
    table = argv[1] if argv[0] == "--table" else "v1"
    sample_seed = int(argv[1]) if argv[0] == "--sample-seed" else 1
    code, _, err = _build(built, 2, [0, 1], sample_seed=sample_seed, table=table)
    assert_one_line(err, code, 2, expected)
    assert snapshot(built.parent) == before and len(fast_jobs) == 4


@pytest.mark.parametrize("content", ["[1, 2]", "my notes, not a table\n", '{"format": "nds-ground-truth/1", "ent'],
                         ids=["json-list", "text", "truncated-table"])
def test_a_file_the_build_did_not_make_is_never_replaced(content: str, tmp_path: Path, fast_jobs: list) -> None:
    out = tmp_path / "table.json"
    out.write_text(content)
    code, _, err = _build(out, 1, [0])
    assert_one_line(err, code, 2, "--out", "not a ground-truth table")
    assert out.read_text() == content and not fast_jobs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.json"]


def test_compare_never_trains_over_another_job_nor_drops_runs(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    out = tmp_path / "cmp"
    base = ["bench", "compare", "--config", config, "--out", out, "--seeds", "0"]
    code, _, err = run_nds([*base, "--recipes", "spos"])
    assert code == 0, err
    before = snapshot(out)
    code, _, err = run_nds([*base, "--recipes", "spos", "--set", "training.lr=0.01"])
    assert_one_line(err, code, 2, "--out", "finished run of another job")
    assert snapshot(out) == before
    code, _, err = run_nds([*base, "--recipes", "fairnas"])
    assert_one_line(err, code, 2, "compare.json", "spos seed 0")
    assert snapshot(out) == before
    code, _, err = run_nds([*base, "--recipes", "spos", "fairnas"])  # spos reused, fairnas added
    assert code == 0, err
    runs = json.loads((out / "compare.json").read_text())["runs"]
    assert [(r["strategy"], r["seed"]) for r in runs] == [("spos", 0), ("fairnas", 0)]
    assert (out / "spos" / "seed0" / "results.json").read_bytes() == before["spos/seed0/results.json"]
    assert_nothing_half_written(out)
