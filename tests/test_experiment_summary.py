"""``nds summary``: an nnictl experiment's trials paired by seed, through NNI's own API and real nnictl."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nni_dynamic_supernet.experiment_summary import format_summary, summarize_trials

from .bench.tiny_compare import SPACE, tiny_table
from .nnictl_helpers import experiment_config, free_port, nnictl_experiment, rest, tiny_trial_template, wait_done

REPO = Path(__file__).resolve().parents[1]


def _trial(i: int, strategy: str, seed: int, tau: float, status: str = "SUCCEEDED") -> dict:
    return {"trial": f"t{i}", "status": status, "parameters": {"strategy": strategy, "seed": seed},
            "final": {"default": tau, "kendall_tau": tau, "params_tau": 0.44, "synflow_tau": 0.48}}


def test_trials_are_paired_by_seed_and_failed_ones_are_excluded() -> None:
    trials = [_trial(0, "fairnas", 0, 0.10), _trial(1, "fairnas_calr_ms", 0, 0.30), _trial(2, "fairnas", 1, 0.00),
              _trial(3, "fairnas_calr_ms", 1, 0.25), _trial(4, "fairnas", 2, 0.2),
              _trial(5, "fairnas_calr_ms", 2, 0.9, status="FAILED")]
    summary = summarize_trials(trials)
    (pair,) = summary["pairs"]
    assert (pair["technique"], pair["baseline"], pair["seeds"]) == ("fairnas_calr_ms", "fairnas", [0, 1])
    assert pair["diff_mean"] == pytest.approx(0.225) and pair["p_sign_flip"] == pytest.approx(0.5)
    assert summary["excluded"] == [{"trial": "t5", "reason": "status FAILED"}]
    assert summary["baselines"] == pytest.approx({"params_tau": 0.44, "synflow_tau": 0.48})
    text = format_summary(summary)
    assert "| fairnas_calr_ms vs fairnas | 2 | +0.225 [" in text and "params 0.440" in text and "t5 (status FAILED)" in text


def test_summary_of_a_real_nnictl_experiment(tmp_path: Path) -> None:
    """Two recipes x two seeds through real nnictl; `nds summary --port` pairs them while the experiment is up."""
    table = tiny_table(tmp_path / "gt.json")
    template = tiny_trial_template(tmp_path, REPO, ground_truth=table, epochs=1)
    raw = yaml.safe_load(template.read_text())
    raw["space"]["kwargs"] = SPACE
    raw["data"] = {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200}
    template.write_text(yaml.safe_dump(raw))
    config = experiment_config(tmp_path, REPO, template, example="spos_calr.yml")
    exp = yaml.safe_load(config.read_text())
    exp["searchSpace"]["seed"]["_value"] = [0, 1]
    exp["maxTrialNumber"] = 4
    config.write_text(yaml.safe_dump(exp))
    port = free_port()
    with nnictl_experiment(config, port):
        status = wait_done(port, timeout=540)
        jobs = rest(port, "trial-jobs")
        assert status == "DONE" and all(j["status"] == "SUCCEEDED" for j in jobs), (status, jobs)
        out = tmp_path / "summary.json"
        proc = subprocess.run([sys.executable, "-m", "nni_dynamic_supernet.cli", "summary", "--port", str(port),
                               "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| fairnas_calr_ms vs fairnas | 2 |" in proc.stdout and "Trivial rankers" in proc.stdout
    summary = json.loads(out.read_text())
    (pair,) = summary["pairs"]
    assert pair["n"] == 2 and len(pair["ci95"]) == 2 and pair["p_sign_flip_method"] == "exact"
    assert {t["strategy"] for t in summary["trials"]} == {"fairnas", "fairnas_calr_ms"}


def test_summary_refuses_a_port_without_an_experiment(capsys) -> None:
    from nni_dynamic_supernet.cli import main
    assert main(["summary", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nds: error: --port=") and "\n" not in err
