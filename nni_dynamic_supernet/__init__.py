"""nni_dynamic_supernet: supernet training that ranks subnets correctly, for NNI 3.0.

Public API::

    from nni_dynamic_supernet import create_space, create_strategy, list_spaces, list_strategies
    from nni_dynamic_supernet import Recipe, load_recipe, run_recipe, build_splits, ConfigError

Names are imported lazily, so ``import nni_dynamic_supernet`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "create_space": "registry", "create_strategy": "registry", "list_spaces": "registry",
    "list_strategies": "registry", "Recipe": "recipe", "load_recipe": "recipe", "run_recipe": "pipeline",
    "build_splits": "data", "ConfigError": "errors", "GroundTruth": "ranking", "ranking_report": "ranking",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nni_dynamic_supernet' has no attribute {name!r}")
