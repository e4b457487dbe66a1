"""Start, poll and stop a real nnictl experiment on 127.0.0.1 for end-to-end tests.

Experiments under ~/nni-experiments are shared by every process of the machine, so a
test only ever stops its own experiment, by id, in a ``finally``.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rest(port: int, path: str) -> object:
    """GET ``/api/v1/nni/<path>`` and decode the JSON."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=10) as resp:
        return json.loads(resp.read().decode())


def rest_send(port: int, path: str, method: str, body: object = None) -> object:
    """POST / DELETE ``/api/v1/nni/<path>`` with a JSON body; the decoded answer (``None`` when empty)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/nni/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        text = resp.read().decode()
    return json.loads(text) if text else None


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def nnictl_experiment(config: Path, port: int, timeout: float = 600) -> Iterator[str]:
    """Create the experiment of ``config`` on ``port``, yield its id, and stop it by id afterwards."""
    for attempt in range(2):
        # Own session: a shell that kills its process group would otherwise take the manager with it.
        proc = subprocess.run([str(VENV_BIN / "nnictl"), "create", "--config", str(config), "--port", str(port)],
                              capture_output=True, text=True, env=_env(), timeout=120, start_new_session=True)
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        match = (re.search(r"ID:\s*([0-9a-z]+)", output)
                 or re.search(r"experiment id\s*[:=]?\s*([0-9a-z]{8})", output, re.I))
        exp_id = match.group(1) if match else None
        if exp_id is None:
            # Never leave an experiment behind: find ours by port if the id was not printed.
            found = re.search(r"nnictl stop ([0-9a-z]+)", output)
            exp_id = found.group(1) if found else None
        # On a loaded machine nnictl gives up on its manager's first answer ("Create experiment failed:
        # Expecting value"); that is nnictl's start-up timeout, not the code under test: try once more.
        if proc.returncode == 0 or attempt == 1 or "Create experiment failed" not in output:
            break
        if exp_id:
            subprocess.run([str(VENV_BIN / "nnictl"), "stop", exp_id], capture_output=True, env=_env(), timeout=120)
        time.sleep(5)
    try:
        assert proc.returncode == 0 and exp_id, f"nnictl create failed:\n{output}"
        yield exp_id
    finally:
        if exp_id:
            subprocess.run([str(VENV_BIN / "nnictl"), "stop", exp_id], capture_output=True, env=_env(), timeout=120)


def wait_done(port: int, timeout: float) -> str:
    """Poll ``check-status`` until DONE, ERROR or STOPPED, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        try:
            status = rest(port, "check-status")["status"]
        except OSError:
            status = "UNREACHABLE"
        if status in ("DONE", "ERROR", "STOPPED"):
            return status
        time.sleep(3)
    return status


def metrics(port: int) -> list[dict]:
    """Every metric record, with ``data`` decoded (NNI encodes it twice)."""
    out = []
    for record in rest(port, "metric-data"):
        data = record["data"]
        value = json.loads(json.loads(data)) if isinstance(data, str) else data
        out.append({**record, "value": value})
    return out


def tiny_trial_template(tmp: Path, repo: Path, ground_truth: object = None, epochs: int = 2) -> Path:
    """A recipe template whose trial trains a 2-channel, one-cell NAS-Bench-201 supernet for a few steps.

    ``ground_truth`` (a table path) makes the trials report ``kendall_tau`` and friends;
    ``None`` reports ``best_accuracy`` only.
    """
    import yaml
    raw = yaml.safe_load((repo / "config_templates" / "spos.yaml").read_text())
    raw["space"]["kwargs"] = {"channels": 2, "cells_per_stage": 1}
    raw["training"].update(epochs=epochs, max_steps_per_epoch=2)
    raw["search"].update(max_evaluations=6, population=4, generations=2, select_num=2, mutation_num=2,
                         crossover_num=2)
    headline = "kendall_tau" if ground_truth is not None else "best_accuracy"
    raw["ranking"].update(probe_archs=4, probe_every=1, headline=headline,
                          ground_truth=str(ground_truth) if ground_truth is not None else None)
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def experiment_config(tmp: Path, repo: Path, template: Path, example: str = "spos.yml") -> Path:
    """``examples/<example>`` pointed at ``template``, run from ``repo``, with its experiment files under ``tmp``."""
    import yaml
    config = yaml.safe_load((repo / "examples" / example).read_text())
    config["trialCommand"] = f"python3 -m nni_dynamic_supernet.trial --config {template}"
    config["trialCodeDirectory"] = str(repo)
    config["experimentWorkingDirectory"] = str(tmp / "nni-experiments")
    path = tmp / "exp.yml"
    path.write_text(yaml.safe_dump(config))
    return path
