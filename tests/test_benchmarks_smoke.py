"""CI smoke test of the benchmark suite: every benchmark of ``benchmarks.run`` runs at a tiny size.

The numbers are meaningless at this size; the test only keeps the suite from rotting
unnoticed (a benchmark that crashes, or returns no ratio, fails it).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

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


def test_shifting_verdict_pairs_by_checkpoint_and_looks_up_the_named_table():
    from scipy import stats

    from benchmarks.shifting import paired
    from nni_dynamic_supernet.bench.standalone_lookup import StandaloneAccuracy
    from nni_dynamic_supernet.ranking.tables import get_table
    from nni_dynamic_supernet.ranking import GroundTruth

    rows = [{"seed": s, "variant": v, "tau_top10": t} for s, (a, b) in enumerate([(0.1, 0.3), (0.2, 0.1), (0.0, 0.4)])
            for v, t in (("plain", a), ("shift_paper", b))]
    rows.append({"seed": 3, "variant": "shift_paper", "tau_top10": 0.9})  # no plain search for seed 3: unpaired
    rows.append({"seed": 4, "variant": "plain", "tau_top10": float("nan")})  # all scores tied: left out
    rows.append({"seed": 4, "variant": "shift_paper", "tau_top10": 0.5})
    test = paired(rows, "shift_paper", "tau_top10")
    assert test["n"] == 3 and math.isclose(test["mean_diff"], (0.2 - 0.1 + 0.4) / 3)
    assert math.isclose(test["p_ttest"], stats.ttest_rel([0.3, 0.1, 0.4], [0.1, 0.2, 0.0]).pvalue)
    spec = get_table("v2")
    truth = GroundTruth.load(spec.path)
    lookup = StandaloneAccuracy(Path("unused_cache.json"), spec)
    arch = truth.archs()[0]
    assert lookup(arch) == truth.accuracy(arch) and lookup.trained == 0


@pytest.mark.parametrize("args, field", [(["--workers", "0"], "--workers 0"), (["--seeds", "0", "0"], "--seeds 0 0"),
                                         (["--table", "v9"], "--table")])
def test_shifting_benchmark_refuses_bad_arguments(args, field, capsys):
    from benchmarks.shifting import main
    with pytest.raises(SystemExit):
        main(["--checkpoints", "unused.pt", *args])
    assert field in capsys.readouterr().err


def test_gpu_check_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    """``benchmarks/gpu_check.sh --cpu --tiny``: every side of the table and both end-to-end runs (not the tests).

    In a subprocess, as a user runs it: its DDP run starts a process group and gloo threads, and
    a later test that forks (the SIGKILL resume tests) must not inherit them.
    """
    import subprocess
    import sys

    from benchmarks import gpu

    out = tmp_path / "gpu.json"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--cpu", "--tiny", "--skip", "tests",
                           "--out", str(out)], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and "spos / NNI RandomOneShot" in proc.stdout
    for precision in ("32", "bf16"):
        sides = report["throughput"][precision]
        assert set(sides) == {*gpu.STRATEGIES, gpu.SPOS_ZERO, "NNI RandomOneShot"}
        assert all(row["steps_per_s"] > 0 for row in sides.values())
    assert all(row["ok"] for row in report["end_to_end"].values()), report["end_to_end"]


def test_gpu_check_without_the_project_says_what_to_install(tmp_path):
    """A Python that cannot import NNI or the project gets a one-line install hint and exit 2, not a traceback."""
    import os
    import subprocess

    bare = tmp_path / "python"
    bare.write_text("#!/bin/sh\nexit 1\n")  # stands for an interpreter without nni: every import fails
    bare.chmod(0o755)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_check.sh"), "--cpu", "--tiny"],
                          env={**os.environ, "PYTHON": str(bare)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install the project" in lines[0] and str(bare) in lines[0]
