"""Errors the plugin raises for bad input.

Every user mistake (a wrong config value, an unknown name, a missing dataset, an
impossible constraint) is reported as a :class:`ConfigError` whose message is one
line naming the field, the offending value and how to fix it. The command-line
entry points print that line and exit with a non-zero status instead of a traceback.
"""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A user-facing configuration or input error with a one-line message.

    Parameters
    ----------
    field
        Dotted name of the offending field (``training.lr``) or input (``--checkpoint``).
    value
        The value that was given.
    fix
        What is allowed, or what to do instead.
    """

    def __init__(self, field: str, value: Any, fix: str) -> None:
        self.field = field
        self.value = value
        self.fix = fix
        super().__init__(f"{field}={value!r}: {fix}")


class TrainingDiverged(RuntimeError):
    """Training stopped on a NaN/inf loss or gradient; the one-line message names the step, the subnet
    and the last good checkpoint to resume from."""
