"""Argument checks and tags shared by our space factories.

Each factory reports a bad argument the same way (``space.kwargs.<arg>=<value>: <fix>``) and tags
the space it returns with ``nds_input_shape``, ``nds_space_name`` and ``nds_space_kwargs``.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import ConfigError

__all__ = ['check_positive_int', 'check_int_sequence', 'check_positive_float', 'check_probability', 'tag_space']


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools rejected), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f'space.kwargs.{name}', value, f'use an integer >= {minimum}')
    return int(value)


def check_int_sequence(name: str, value: Any, minimum: int = 1, allowed: Sequence[int] | None = None,
                        length: int | None = None) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ints, each >= ``minimum`` (and in ``allowed`` when given).

    Raises ConfigError naming ``space.kwargs.<name>`` when the value is not a non-empty list/tuple of such ints
    or (with ``length``) does not have that many entries.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a non-empty list of integers')
    if length is not None and len(value) != length:
        raise ConfigError(f'space.kwargs.{name}', value, f'use a list of {length} integers (one per stage)')
    for v in value:
        bad = isinstance(v, bool) or not isinstance(v, int) or v < minimum
        if bad or (allowed is not None and v not in allowed):
            what = f'one of {list(allowed)}' if allowed is not None else f'an integer >= {minimum}'
            raise ConfigError(f'space.kwargs.{name}', value, f'every entry must be {what}')
    return tuple(int(v) for v in value)


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive real number, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a positive number')
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a number in [0, 1)')
    return float(value)


def tag_space(space: Any, name: str, kwargs: dict[str, Any], input_shape: tuple[int, int, int]) -> Any:
    """Attach the ``nds_*`` attributes every factory promises and return ``space``.

    ``nds_input_shape`` lets later stages (complexity model, data checks) build dummy inputs without
    knowing the factory; ``nds_space_name``/``nds_space_kwargs`` let a checkpoint or results.json record
    how to rebuild the space.
    """
    space.nds_input_shape = tuple(int(d) for d in input_shape)
    space.nds_space_name = name
    space.nds_space_kwargs = dict(kwargs)
    return space
