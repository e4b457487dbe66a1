"""Discovery of strategy presets and spaces through Python entry points.

Two entry-point groups are read with :mod:`importlib.metadata`:

* ``nni_dynamic_supernet.strategies``: each entry loads a
  :class:`~nni_dynamic_supernet.strategies.Preset`;
* ``nni_dynamic_supernet.spaces``: each entry loads a factory ``(**kwargs) -> ModelSpace``.

Another installed package can add entries to either group. When this package runs
from a source tree that was never installed, its own built-ins are still found.

This module sits below the recipe: :class:`~nni_dynamic_supernet.recipe.Recipe` expands a
strategy name into its preset's settings with :func:`get_preset`. Creating an NNI strategy
from a recipe is the registry's job (:func:`nni_dynamic_supernet.registry.create_strategy`).
"""
from __future__ import annotations

import functools
import importlib
from importlib import metadata
from typing import Any, Callable

from . import strategies
from .errors import ConfigError

__all__ = ["list_strategies", "get_preset", "list_spaces", "create_space", "STRATEGY_GROUP", "SPACE_GROUP"]

STRATEGY_GROUP = "nni_dynamic_supernet.strategies"
SPACE_GROUP = "nni_dynamic_supernet.spaces"

_BUILTIN_SPACES = {"nas_bench_201": "nas_bench_201", "mobilenet": "mobilenet", "shufflenet": "shufflenet"}


@functools.lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, Any]:
    found: dict[str, Any] = {ep.name: ep for ep in metadata.entry_points(group=group)}
    return found


def _builtin_strategies() -> dict[str, Callable[[], Any]]:
    """The presets of :mod:`~nni_dynamic_supernet.strategies`, as loaders (the entry points' form)."""
    return {name: (lambda preset=preset: preset) for name, preset in strategies.PRESETS.items()}


def _builtin_spaces() -> dict[str, Callable[[], Any]]:
    """Our spaces, as loaders that import a space's module only when it is built (NNI, torch)."""
    def loader(module: str) -> Callable[[], Any]:
        def load() -> Any:
            return getattr(importlib.import_module(f"nni_dynamic_supernet.spaces.{module}"), module)
        return load
    return {name: loader(module) for name, module in _BUILTIN_SPACES.items()}


def _loaders(group: str) -> dict[str, Callable[[], Any]]:
    loaders = _builtin_strategies() if group == STRATEGY_GROUP else _builtin_spaces()
    for name, ep in _entry_points(group).items():
        loaders[name] = ep.load
    return loaders


def list_strategies() -> list[str]:
    """Names of every registered strategy preset, sorted."""
    return sorted(_loaders(STRATEGY_GROUP))


def list_spaces() -> list[str]:
    """Names of every registered search space, sorted."""
    return sorted(_loaders(SPACE_GROUP))


def get_preset(name: str) -> Any:
    """The :class:`Preset` registered as ``name``; an unknown name lists the known ones."""
    loaders = _loaders(STRATEGY_GROUP)
    if name not in loaders:
        raise ConfigError("strategy", name, f"unknown strategy; known: {', '.join(sorted(loaders))}")
    return loaders[name]()


def create_space(name: str, **kwargs: Any) -> Any:
    """Build the registered search space ``name`` (an NNI ``ModelSpace``) with ``kwargs``."""
    loaders = _loaders(SPACE_GROUP)
    if name not in loaders:
        raise ConfigError("space.name", name, f"unknown space; known: {', '.join(sorted(loaders))}")
    factory = loaders[name]()
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError("space.kwargs", kwargs, f"not accepted by space {name}: {exc}") from None
