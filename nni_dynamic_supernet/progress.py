"""Progress bars that show only where someone watches: a terminal, never an nnictl trial.

NNI captures a trial's stdout and stderr into ``trial.log``; a tqdm bar there becomes
hundreds of carriage-return lines. Every bar of the package goes through
:func:`progress_bar`, which is off when stderr is not a TTY or ``NNI_PLATFORM`` is set
(quiet mode), unless the caller forces it.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional

__all__ = ["interactive", "in_nni_trial", "progress_bar", "ProgressLog", "heartbeat", "LOG_INTERVAL_S"]

#: Longest wall time between two progress lines of a quiet stage (search, probes, ranking). Kept under
#: 15 s so that a trial's log never looks stalled; one evaluation may add its own duration on top.
LOG_INTERVAL_S = 10.0


def in_nni_trial() -> bool:
    """Whether this process is an nnictl trial (NNI sets ``NNI_PLATFORM`` for every trial)."""
    return bool(os.environ.get("NNI_PLATFORM"))


def interactive() -> bool:
    """Whether progress bars should show by default: stderr is a terminal and this is no nnictl trial."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and not in_nni_trial()


def resolve(enabled: Optional[bool]) -> bool:
    """``enabled`` when given (a user's explicit choice), else :func:`interactive`; never on in a trial."""
    if in_nni_trial():
        return False
    return interactive() if enabled is None else bool(enabled)


def progress_bar(iterable: Optional[Iterable] = None, desc: str = "", total: Optional[int] = None,
                 unit: str = "it", enabled: Optional[bool] = None) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one when ``iterable`` is None), disabled when quiet.

    Parameters
    ----------
    iterable
        What to iterate; ``None`` makes a bar advanced with ``update()``.
    desc, total, unit
        As in tqdm.
    enabled
        ``True`` / ``False`` force the bar on or off outside trials; ``None`` shows it when
        :func:`interactive`.
    """
    from tqdm.auto import tqdm  # lazy: importing tqdm costs time on every `nds` command otherwise
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not resolve(enabled), dynamic_ncols=True,
                leave=False)


class _LastLine(logging.Filter):
    """Remembers when the package's logger last let a line through (an epoch line, a stage's line)."""

    at = time.monotonic()

    def filter(self, record: logging.LogRecord) -> bool:
        _LastLine.at = time.monotonic()
        return True


class ProgressLog:
    """One-line progress messages for a stage that shows no bar (an nnictl trial, a redirected ``nds``).

    :meth:`update` counts work and logs ``<what>: <done>/<total> <unit> [<seconds> s]`` when
    :data:`LOG_INTERVAL_S` has passed since the package's logger wrote its last line (of
    any stage), so the log is never silent for long; :meth:`line` logs a milestone (a
    search generation) at once. Disabled, it logs nothing (a bar shows the same progress).

    Parameters
    ----------
    what
        The stage's name, first word of every line (``search``, ``ranking``, ``probe``).
    total
        Units of work expected (``None``: unknown).
    unit
        Unit of ``total`` (``archs``).
    enabled
        ``False`` silences it (a progress bar is showing instead).
    logger
        Where the lines go (default: the package's logger).
    """

    def __init__(self, what: str, total: Optional[int] = None, unit: str = "archs", enabled: bool = True,
                 logger: Optional[logging.Logger] = None) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.logger = logger or logging.getLogger("nni_dynamic_supernet")
        if not any(isinstance(f, _LastLine) for f in self.logger.filters):
            self.logger.addFilter(_LastLine())
        self.done = 0
        self.started = self.last = time.monotonic()

    def _count(self) -> str:
        return f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"

    def line(self, text: str) -> None:
        """Log ``<what>: <text> [<seconds since start> s]`` now."""
        if self.enabled:
            self.last = time.monotonic()
            self.logger.info("%s: %s  [%.1f s]", self.what, text, self.last - self.started)

    def update(self, n: int = 1) -> None:
        """Count ``n`` units; log the count when :data:`LOG_INTERVAL_S` passed since the last line."""
        self.done += n
        if self.enabled and time.monotonic() - _LastLine.at >= LOG_INTERVAL_S:
            self.line(self._count())

    def close(self) -> None:
        """Log the final count once the stage is over, if it logged anything before (a long stage)."""
        if self.last != self.started:
            self.line(f"{self._count()} done")


@contextmanager
def heartbeat(what: str, enabled: bool = True) -> Iterator[None]:
    """While the block runs, log ``<what>: still working [<s> s]`` whenever the package's logger was silent
    for :data:`LOG_INTERVAL_S`.

    For stretches that count no work a :class:`ProgressLog` could report (building the params/FLOPs model
    of a space, drawing figures): from a daemon thread, so a long computation cannot hold the lines back.
    """
    if not enabled:
        yield
        return
    logger = logging.getLogger("nni_dynamic_supernet")
    if not any(isinstance(f, _LastLine) for f in logger.filters):
        logger.addFilter(_LastLine())
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(min(1.0, LOG_INTERVAL_S / 4)):
            if time.monotonic() - _LastLine.at >= LOG_INTERVAL_S:
                logger.info("%s: still working  [%.1f s]", what, time.monotonic() - started)

    thread = threading.Thread(target=beat, name="nds-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
