"""Test-session set-up shared by every test module."""
from __future__ import annotations

import logging
import os
import sys
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Baseline scores cached by the runs of one test session go to a fresh folder, not the user's cache.

    Set through the environment, so subprocesses (``nds`` commands, nnictl trials) share it.
    """
    if "NDS_CACHE_DIR" not in os.environ:
        os.environ["NDS_CACHE_DIR"] = tempfile.mkdtemp(prefix="nds-test-cache-")


def _detach_capture_stream_handlers() -> list[logging.Handler]:
    """Remove every log handler that writes to a stream other than the real stdout / stderr.

    NNI adds a handler on ``sys.stdout`` when it is first imported, which under pytest is the
    capture stream of whichever test imported it. NNI's ``NasExperiment`` registers ``stop`` with
    ``atexit``, so it logs after pytest has printed its summary and closed that stream; Python's
    logging then prints ``--- Logging error --- ValueError: I/O operation on closed file`` for
    every message. Those messages ("Stopping experiment", "Checkpoint saved") carry nothing a test
    checks, so the handlers are dropped before the capture streams close. File handlers (NNI's
    experiment.log) are kept.
    """
    real = {sys.__stdout__, sys.__stderr__}
    removed = []
    loggers = [logging.getLogger()] + [obj for obj in logging.Logger.manager.loggerDict.values()
                                       if isinstance(obj, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and handler.stream not in real:
                logger.removeHandler(handler)
                removed.append(handler)
    return removed


def pytest_unconfigure(config: pytest.Config) -> None:
    """After the summary, before pytest closes its capture streams (see :func:`_detach_capture_stream_handlers`)."""
    _detach_capture_stream_handlers()
