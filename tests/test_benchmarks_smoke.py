"""CI smoke test of the benchmark suite: every benchmark of ``benchmarks.run`` runs at a tiny size.

The numbers are meaningless at this size; the test only keeps the suite from rotting
unnoticed (a benchmark that crashes, or returns no ratio, fails it).
"""
from __future__ import annotations

import json
import math

from benchmarks import run as bench_run


def test_every_benchmark_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "results.json"
    payload = bench_run.main(["--tiny", "--only", *bench_run.BENCHMARKS, *bench_run.OPTIONAL, *bench_run.TABLES,
                              "--out", str(out)])
    assert json.loads(out.read_text())["results"] == payload["results"]
    ran = {value["benchmark"] for value in payload["results"].values()}
    assert ran == set(bench_run.BENCHMARKS) | set(bench_run.OPTIONAL)
    for key, value in payload["results"].items():
        assert math.isfinite(value["median"]) and value["median"] > 0, key
    assert payload["tables"]["scaling"], "the scaling table has no rows"
    assert all(row["step_s"] >= 0 for row in payload["tables"]["scaling"])
