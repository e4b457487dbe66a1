"""Through real nnictl: a trial stopped by ``maxTrialDuration`` shows as stopped, with no final result.

NNI 3.0's trial keeper stops a trial with SIGINT (SIGKILL 5 s later) and files it as SUCCEEDED
when it exits with 0, FAILED with another status. The trial runner ends by the signal instead,
without reporting a final result, which NNI files as USER_CANCELED: NNI 3.0 marks a
``maxTrialDuration`` stop as early-stopped only after the trial has ended (``cancelTrialJob`` in
its ``training_service/v3/compat.js`` sets the flag after awaiting the stop), so EARLY_STOPPED
never shows for a trial that ends when told to. Slow (an nnictl experiment, about a minute):
``pytest -m slow tests/faults/test_nnictl_stop.py``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ..nnictl_helpers import experiment_config, free_port, metrics, nnictl_experiment, rest, tiny_trial_template, \
    wait_done

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_trial_over_its_max_duration_is_stopped_without_a_final_result(tmp_path: Path) -> None:
    import yaml
    template = tiny_trial_template(tmp_path, REPO, epochs=100_000)  # trains until it is stopped
    config_path = experiment_config(tmp_path, REPO, template)
    config = yaml.safe_load(config_path.read_text())
    config.update(maxTrialNumber=1, trialConcurrency=1, maxTrialDuration="40s")
    config["searchSpace"] = {"seed": {"_type": "choice", "_value": [0]}}
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    with nnictl_experiment(config_path, port):
        status = wait_done(port, timeout=300)
        jobs = rest(port, "trial-jobs")
        assert status == "DONE", (status, jobs)
        (job,) = jobs
        assert job["status"] in ("USER_CANCELED", "EARLY_STOPPED"), job  # not SUCCEEDED, not FAILED
        records = [r for r in metrics(port) if r["trialJobId"] == job["trialJobId"]]
        assert not [r for r in records if r["type"] == "FINAL"], records
        assert [r for r in records if r["type"] == "PERIODICAL"], "the trial never trained: raise maxTrialDuration"
        trial_dir = Path(job["logPath"].split(":", 1)[-1]) if ":" in job["logPath"] else Path(job["logPath"])
        stderr = (trial_dir / "trial.stderr").read_text()
        assert "trial: stopped by SIGINT" in stderr and "Traceback" not in stderr, stderr[-2000:]
        assert (trial_dir / "lightning" / "last.ckpt").is_file() and not (trial_dir / "results.json").exists()
