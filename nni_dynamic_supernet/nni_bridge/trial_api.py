"""The nnictl trial API: the tuner's parameters for this trial, and its metric reports.

Our trial runner (:mod:`nni_dynamic_supernet.trial`) reads the parameters with
:func:`nni_parameters` and reports through :class:`NniReporter`; both are no-ops outside
nnictl. They hold the workaround for NNI 3.0 delivering a trial another trial's parameters.
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Optional

import nni
import nni.trial

_logger = logging.getLogger("nni_dynamic_supernet.nni_bridge")

__all__ = ["nni_parameters", "NniReporter"]


def nni_parameters() -> dict:
    """The tuner's parameters for this trial (``{}`` outside nnictl).

    NNI 3.0's local training service hands the queued parameters to whichever trial asks first,
    not to the trial the manager recorded them for (microsoft/nni#5726). With several trials
    starting together, a trial can then run another trial's parameters while the web UI shows
    its own next to its metrics. So the trial asks the manager which parameters it recorded for
    this trial and runs those, reporting under their ``parameter_id``: the web UI, the tuner and
    the trial then agree. When the manager cannot be asked, the delivered parameters are kept.
    """
    if not os.environ.get("NNI_PLATFORM"):
        return {}
    params = nni.get_next_parameter()
    delivered = nni.trial._params
    recorded = _recorded_parameter_record()
    if recorded is not None and delivered is not None and recorded.get("parameter_id") != delivered.get("parameter_id"):
        _logger.warning("NNI delivered the parameters of parameter_id %s to trial %s, whose recorded parameters (shown "
                        "in the web UI) are parameter_id %s (microsoft/nni#5726); running the recorded ones",
                        delivered.get("parameter_id"), os.environ.get("NNI_TRIAL_JOB_ID"), recorded.get("parameter_id"))
        nni.trial._params = recorded  # the reports carry this parameter_id
        params = recorded.get("parameters")
    return dict(params or {})


def _recorded_parameter_record(attempts: int = 10, wait: float = 0.5) -> Optional[dict]:
    """The parameter record nnictl's manager holds for this trial, or ``None`` if it cannot be read.

    The trial's command channel is served by the manager's REST server
    (``http://HOST:PORT/[PREFIX/]env/ENV/TRIAL``), whose ``api/v1/nni/trial-jobs/ID`` has the
    trial's ``hyperParameters``. The record may lag the trial's start by a moment, so it is
    asked a few times.
    """
    channel = os.environ.get("NNI_TRIAL_COMMAND_CHANNEL", "")
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "")
    if not channel.startswith("http") or "/env/" not in channel or not trial_id:
        return None
    url = f"{channel[:channel.rindex('/env/')]}/api/v1/nni/trial-jobs/{trial_id}"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                job = json.loads(response.read().decode("utf-8"))
            hyper = job.get("hyperParameters") if isinstance(job, dict) else None
            if hyper:
                record = json.loads(hyper[0])
                if isinstance(record, dict) and "parameter_id" in record and "parameters" in record:
                    return record
        except (OSError, ValueError, urllib.error.URLError):
            pass
        if attempt + 1 < attempts:
            time.sleep(wait)
    _logger.info("could not read this trial's recorded parameters from %s; keeping the delivered ones", url)
    return None


class NniReporter:
    """Sends intermediate and final metric dicts to nnictl (no-op outside a trial).

    ``default`` must be a float: NNI's web UI plots and sorts by it. Values are plain
    Python floats, strings or ints.
    """

    def __init__(self) -> None:
        #: Whether this process is an nnictl trial (``NNI_PLATFORM`` is set).
        self.active = bool(os.environ.get("NNI_PLATFORM"))

    def intermediate(self, metrics: dict) -> None:
        """Report one epoch's metrics."""
        if self.active:
            nni.report_intermediate_result(metrics)

    def final(self, metrics: dict) -> None:
        """Report the trial's final metrics."""
        if self.active:
            nni.report_final_result(metrics)
