"""The public registry: strategies and spaces by name, and NNI strategies made from presets.

Strategies (``nni_dynamic_supernet.strategies`` entry points) and spaces
(``nni_dynamic_supernet.spaces``) are discovered by :mod:`nni_dynamic_supernet.catalog`, whose
functions are re-exported here; another installed package can add to either group.
:func:`create_strategy` turns a preset into an NNI ``Strategy`` for ``NasExperiment``.
"""
from __future__ import annotations

from typing import Any

from .catalog import SPACE_GROUP, STRATEGY_GROUP, create_space, get_preset, list_spaces, list_strategies
from .errors import ConfigError

__all__ = ["list_strategies", "create_strategy", "get_preset", "list_spaces", "create_space",
           "STRATEGY_GROUP", "SPACE_GROUP"]


def create_strategy(name: str, **overrides: Any) -> Any:
    """An NNI ``Strategy`` running preset ``name``, for ``NasExperiment(space, evaluator, strategy)``.

    Parameters
    ----------
    name
        A registered strategy (see :func:`list_strategies`).
    **overrides
        Recipe fields, as dotted keys (``**{"search.population": 20}``) or as bare
        names, which are looked up in ``training``, then ``search`` (``gamma_max=2``).

    Examples
    --------
    >>> from nni.nas.experiment import NasExperiment                      # doctest: +SKIP
    >>> strategy = create_strategy("spos_calr_ms", gamma_max=3, max_evaluations=100)  # doctest: +SKIP
    >>> NasExperiment(space, evaluator, strategy).run()                    # doctest: +SKIP
    """
    import dataclasses

    from .nni_bridge import DynamicSupernetStrategy
    from .recipe import Recipe, SearchConfig, TrainingConfig

    training_fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    search_fields = {f.name for f in dataclasses.fields(SearchConfig)}
    dotted: dict[str, Any] = {}
    for key, value in overrides.items():
        if "." in key or key == "seed":
            dotted[key] = value
        elif key in training_fields:
            dotted[f"training.{key}"] = value
        elif key in search_fields:
            dotted[f"search.{key}"] = value
        else:
            raise ConfigError(key, value, "unknown override; use a dotted recipe key such as training.lr")
    recipe = Recipe.from_dict({"strategy": name}, dotted)
    return DynamicSupernetStrategy(recipe)
