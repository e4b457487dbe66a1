"""SIGTERM and SIGINT mean failure: how ``nds`` and the trial runner stop when told to.

A scheduler (SLURM, Kubernetes, nnictl's ``maxTrialDuration``) stops a job with SIGTERM or
SIGINT and reads its exit status to know whether it finished. Lightning's own SIGTERM
handling ends ``Trainer.fit`` with a ``SystemExit`` whose status is 0, so a stopped run
looked like a successful one. While a command runs, :func:`handle_signals` replaces both
handlers with one that raises :class:`Interrupted`, which the entry points turn into

* ``nds``: one line and exit status 128 + signal (143 for SIGTERM, 130 for SIGINT), the
  convention of shells and batch schedulers;
* the nnictl trial runner: one line, no final result reported, and death *by the signal*
  (:func:`die_by`), which nnictl records as stopped (``USER_CANCELED``) rather than
  ``SUCCEEDED`` (an exit status of its own would read as ``FAILED``).

Files are never left half-written: every result and checkpoint is written by
:mod:`~nni_dynamic_supernet.atomic_io` inside :func:`deferred`, so a signal that arrives
during a write waits until the file is complete and renamed into place. The last
checkpoint on disk is therefore always a whole one, and ``nds train --resume`` continues
from it exactly.

A signal that the parent process set to be ignored (``nohup``, a background job's SIGINT)
stays ignored, and a forked child (a DataLoader worker) that inherits the handler acts as
if it had the default one.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["Interrupted", "handle_signals", "deferred", "die_by", "HANDLED_SIGNALS"]

#: The signals that stop a run (with 128 + signal).
HANDLED_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The command was stopped by a signal (a ``BaseException``: no ``except Exception`` swallows it).

    Parameters
    ----------
    signum
        The signal number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {self.name}")

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGTERM``."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_status(self) -> int:
        """128 + the signal number (143 for SIGTERM)."""
        return 128 + self.signum


_state: dict[str, Any] = {"owner": None, "deferring": 0, "pending": None, "raised": False}


def _handler(signum: int, frame: Any) -> None:
    if os.getpid() != _state["owner"]:
        # A forked child (DataLoader worker) inherited this handler: behave as the default would.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _state["raised"]:
        return  # already stopping: a second Ctrl-C must not interrupt the clean-up
    if _state["deferring"]:
        _state["pending"] = _state["pending"] or signum
        return
    _state["raised"] = True
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """While the block runs, SIGTERM / SIGINT raise :class:`Interrupted` (main thread only).

    The previous handlers are restored afterwards; a signal that was ignored stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import logging
    # Lightning logs "Received SIGTERM" itself; the entry point's one line says what happened and what is kept.
    logging.getLogger("pytorch_lightning.trainer.connectors.signal_connector").setLevel(logging.WARNING)
    previous = {s: signal.getsignal(s) for s in HANDLED_SIGNALS}
    saved = dict(_state)
    _state.update(owner=os.getpid(), deferring=0, pending=None, raised=False)
    for signum, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            if old is not signal.SIG_IGN:
                signal.signal(signum, old if old is not None else signal.SIG_DFL)
        _state.update(saved)


@contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives inside the block is acted on when the block is done (a file write completes)."""
    active = _state["owner"] == os.getpid() and threading.current_thread() is threading.main_thread()
    if not active:
        yield
        return
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        pending: Optional[int] = _state["pending"]
        if not _state["deferring"] and pending is not None:
            _state["pending"] = None
            _state["raised"] = True
            raise Interrupted(pending)


def die_by(signum: int) -> None:
    """End this process by ``signum`` with its default action, so the parent sees "killed by signal"."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not keep the process alive
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    # SIGINT / SIGTERM with the default action end the process before this line.
    os._exit(128 + signum)
