"""Progress bars that show only where someone watches: a terminal, never an nnictl trial.

NNI captures a trial's stdout and stderr into ``trial.log``; a tqdm bar there becomes
hundreds of carriage-return lines. Every bar of the package goes through
:func:`progress_bar`, which is off when stderr is not a TTY or ``NNI_PLATFORM`` is set
(quiet mode), unless the caller forces it.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Optional

__all__ = ["interactive", "in_nni_trial", "progress_bar"]


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
