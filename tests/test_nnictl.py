"""End to end through real nnictl: an HPO experiment whose trials run our trial runner."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .nnictl_helpers import free_port, metrics, nnictl_experiment, rest, wait_done

REPO = Path(__file__).resolve().parents[1]


def _tiny_template(tmp: Path) -> Path:
    raw = yaml.safe_load((REPO / "config_templates" / "spos.yaml").read_text())
    raw["space"]["kwargs"] = {"channels": 2, "cells_per_stage": 1}
    raw["training"].update(epochs=2, max_steps_per_epoch=2)
    raw["search"].update(max_evaluations=6, population=4, generations=2, select_num=2, mutation_num=2,
                         crossover_num=2)
    raw["ranking"].update(probe_archs=4, probe_every=1, headline="best_accuracy", ground_truth=None)
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_spos_experiment_reports_every_epoch_and_a_final_dict(tmp_path: Path) -> None:
    template = _tiny_template(tmp_path)
    config = yaml.safe_load((REPO / "examples" / "spos.yml").read_text())
    config["trialCommand"] = f"python3 -m nni_dynamic_supernet.trial --config {template}"
    config["trialCodeDirectory"] = str(REPO)
    config["experimentWorkingDirectory"] = str(tmp_path / "nni-experiments")
    config_path = tmp_path / "exp.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    with nnictl_experiment(config_path, port):
        status = wait_done(port, timeout=420)
        jobs = rest(port, "trial-jobs")
        assert status == "DONE", (status, [j.get("status") for j in jobs])
        assert len(jobs) == 2 and all(j["status"] == "SUCCEEDED" for j in jobs), jobs
        records = metrics(port)
        for job in jobs:
            mine = [r for r in records if r["trialJobId"] == job["trialJobId"]]
            periodical = [r["value"] for r in mine if r["type"] == "PERIODICAL"]
            final = [r["value"] for r in mine if r["type"] == "FINAL"]
            assert len(periodical) == 2, mine
            assert all(isinstance(p["default"], float) and "loss" in p for p in periodical)
            assert len(final) == 1
            assert isinstance(final[0]["default"], float)
            assert "best_arch" in final[0] and "cell/0_1=" in final[0]["best_arch"]
            trial_dir = Path(job["logPath"].split(":", 1)[-1]) if ":" in job["logPath"] else Path(job["logPath"])
            assert (trial_dir / "results.json").is_file(), trial_dir
            # The web UI's parameters of this trial are the ones it ran, and its metrics are filed under them,
            # although NNI 3.0 hands queued parameters to whichever of the two trials asks first (nni#5726).
            recorded = json.loads(job["hyperParameters"][0])
            ran = json.loads((trial_dir / "results.json").read_text())
            assert ran["seed"] == recorded["parameters"]["seed"], (job["trialJobId"], recorded, ran["seed"])
            assert {str(r["parameterId"]) for r in mine} == {str(recorded["parameter_id"])}, mine
            # One line per epoch in trial.log, and nothing of it copied into trial.stderr.
            log = (trial_dir / "trial.log").read_text()
            assert "epoch 1/2" in log and "epoch 2/2" in log, log
            stderr = (trial_dir / "trial.stderr").read_text() if (trial_dir / "trial.stderr").is_file() else ""
            assert "epoch 1/2" not in stderr and "search:" not in stderr, stderr
