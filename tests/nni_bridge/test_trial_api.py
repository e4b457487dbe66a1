"""A trial runs the parameters nnictl's manager recorded for it, not those NNI 3.0 handed it (nni#5726).

The manager is a stdlib HTTP server that answers ``api/v1/nni/trial-jobs/ID`` as nnictl's REST
server does; ``nni.get_next_parameter`` is replaced by one that delivers another trial's record,
as the local training service does when two trials ask in the other order.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import nni
import nni.trial
import pytest

from nni_dynamic_supernet.nni_bridge import nni_parameters, trial_api

from ..nnictl_helpers import free_port

MINE = {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"strategy": "spos", "seed": 0},
        "parameter_index": 0}
OTHER = {"parameter_id": 1, "parameter_source": "algorithm", "parameters": {"strategy": "spos_calr_ms", "seed": 0},
         "parameter_index": 0}


@pytest.fixture
def manager() -> Iterator[tuple[int, list]]:
    """A fake manager on a free port that records MINE for trial T1; yields (port, requested paths)."""
    requested: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            requested.append(self.path)
            if self.path.endswith("/api/v1/nni/trial-jobs/T1"):
                body = json.dumps({"trialJobId": "T1", "hyperParameters": [json.dumps(MINE)]}).encode()
                self.send_response(200)
            else:
                body = b"{}"
                self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requested
    finally:
        server.shutdown()
        server.server_close()


def _trial_env(monkeypatch: pytest.MonkeyPatch, port: int, delivered: dict, prefix: str = "") -> None:
    monkeypatch.setenv("NNI_PLATFORM", "local")
    monkeypatch.setenv("NNI_TRIAL_JOB_ID", "T1")
    monkeypatch.setenv("NNI_TRIAL_COMMAND_CHANNEL", f"http://127.0.0.1:{port}{prefix}/env/local-env/T1")
    monkeypatch.setattr(nni.trial, "_params", None)

    def deliver() -> dict:
        nni.trial._params = dict(delivered)
        return delivered["parameters"]

    monkeypatch.setattr(nni, "get_next_parameter", deliver)


@pytest.mark.parametrize("prefix", ["", "/my/prefix"])
def test_swapped_parameters_are_replaced_by_the_recorded_ones(manager, monkeypatch, caplog, prefix) -> None:
    port, requested = manager
    _trial_env(monkeypatch, port, OTHER, prefix)
    assert nni_parameters() == MINE["parameters"]
    assert nni.trial._params["parameter_id"] == 0  # so the metrics are filed under the web UI's parameters
    assert requested == [f"{prefix}/api/v1/nni/trial-jobs/T1"]
    assert "nni#5726" in caplog.text


def test_matching_parameters_are_kept(manager, monkeypatch, caplog) -> None:
    port, _ = manager
    _trial_env(monkeypatch, port, MINE)
    assert nni_parameters() == MINE["parameters"] and nni.trial._params["parameter_id"] == 0
    assert "nni#5726" not in caplog.text


def test_delivered_parameters_are_kept_when_the_manager_cannot_be_asked(monkeypatch) -> None:
    _trial_env(monkeypatch, free_port(), OTHER)  # nothing listens there
    assert trial_api._recorded_parameter_record(attempts=2, wait=0.01) is None
    monkeypatch.setattr(trial_api, "_recorded_parameter_record", lambda: None)
    assert nni_parameters() == OTHER["parameters"] and nni.trial._params["parameter_id"] == 1


def test_outside_nnictl_there_are_no_parameters(monkeypatch) -> None:
    monkeypatch.delenv("NNI_PLATFORM", raising=False)
    assert nni_parameters() == {}
