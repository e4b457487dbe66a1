"""Errors the plugin raises for bad input.

Every user mistake (a wrong config value, an unknown name, a missing dataset, an
impossible constraint) is reported as a :class:`ConfigError` whose message is one
line naming the field, the offending value and how to fix it. The command-line
entry points print that line and exit with a non-zero status instead of a traceback.

The line stays short whatever the value: a value is shown by at most
:data:`VALUE_CHARS` characters of its ``repr`` followed by its size, and the repr is
built piece by piece and stopped at that budget, so a huge (or alias-bombed) value
costs no more to report than a small one.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "TrainingDiverged", "short_repr", "one_line", "VALUE_CHARS", "LINE_CHARS"]

#: Characters of a value's repr shown in an error line before it is cut (its size is said instead).
VALUE_CHARS = 200
#: Longest error line: field, value and fix together, with room for the ``nds: error: `` prefix.
LINE_CHARS = 900


class _Budget(Exception):
    """Raised inside :func:`_bounded_repr` when the budget is spent (stops the walk early)."""


def _bounded_repr(value: Any, parts: list[str], budget: list[int], depth: int) -> None:
    """Append the repr of ``value`` to ``parts`` until ``budget[0]`` characters are used."""
    def emit(text: str) -> None:
        parts.append(text[: budget[0]])
        budget[0] -= len(text)
        if budget[0] <= 0:
            raise _Budget

    if depth > 20:  # deeper nesting than any recipe has: show its place, not its content
        emit("...")
        return
    if isinstance(value, dict):
        emit("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                emit(", ")
            _bounded_repr(key, parts, budget, depth + 1)
            emit(": ")
            _bounded_repr(item, parts, budget, depth + 1)
        emit("}")
    elif isinstance(value, (list, tuple)):
        emit("[" if isinstance(value, list) else "(")
        for i, item in enumerate(value):
            if i:
                emit(", ")
            _bounded_repr(item, parts, budget, depth + 1)
        emit("]" if isinstance(value, list) else ("," if len(value) == 1 else "") + ")")
    elif isinstance(value, (str, bytes)):
        emit(repr(value[: budget[0] + 1]))  # never the repr of a 50 MB string
    else:
        emit(repr(value))


def _size(value: Any) -> str:
    """The size of a value in words: characters of a string, items of a container."""
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} of {len(value):,} characters"
    if isinstance(value, (dict, list, tuple, set)):
        return f"a {type(value).__name__} of {len(value):,} items"
    return f"a {type(value).__name__}"


def short_repr(value: Any, limit: int = VALUE_CHARS) -> str:
    """``repr(value)``, or its first ``limit`` characters and the value's size when it is longer.

    Parameters
    ----------
    value
        Any value; containers are walked lazily, so the cost is bounded by ``limit``
        even for a structure whose full repr would not fit in memory.
    limit
        Characters of the repr to keep.

    Returns
    -------
    str
        The repr, or ``"<first chars>... (truncated: a list of 9 items)"``.

    Examples
    --------
    >>> short_repr([1, 2])
    '[1, 2]'
    >>> short_repr("x" * 1000, limit=5)
    "'xxxx... (truncated: a str of 1,000 characters)"
    """
    parts: list[str] = []
    try:
        _bounded_repr(value, parts, [limit], 0)
    except _Budget:
        return "".join(parts)[:limit] + f"... (truncated: {_size(value)})"
    except Exception:  # a user object whose repr fails still gets a line
        return f"<{type(value).__name__}>"
    return "".join(parts)


def one_line(text: str, limit: int = LINE_CHARS) -> str:
    """``text`` on one line (newlines folded to spaces) and at most ``limit`` characters."""
    flat = str(text).replace("\r", " ").replace("\n", " ")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ConfigError(ValueError):
    """A user-facing configuration or input error with a one-line message.

    The message is ``field=value: fix`` with the value's repr cut to :data:`VALUE_CHARS`
    characters (its size is said instead) and the whole line to :data:`LINE_CHARS`.

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
        name = one_line(field, VALUE_CHARS)
        super().__init__(one_line(f"{name}={short_repr(value)}: {fix}"))


class TrainingDiverged(RuntimeError):
    """Training stopped on a NaN/inf loss or gradient; the one-line message names the step, the subnet
    and the last good checkpoint to resume from."""
