"""The public registry: strategies and spaces by name, and NNI strategies made from presets.

Strategies (``nni_dynamic_supernet.strategies`` entry points) and spaces
(``nni_dynamic_supernet.spaces``) are discovered by :mod:`nni_dynamic_supernet.catalog`, whose
functions are re-exported here; another installed package can add to either group.
:func:`create_strategy` turns a preset into an NNI ``Strategy`` for ``NasExperiment``;
:func:`strategy_table_rst` and :func:`hub_space_table_rst` render the README's tables from it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .catalog import SPACE_GROUP, STRATEGY_GROUP, create_space, get_preset, list_spaces, list_strategies
from .errors import ConfigError
from .recipe import Recipe, SearchConfig, TrainingConfig

__all__ = ["list_strategies", "create_strategy", "get_preset", "list_spaces", "create_space",
           "STRATEGY_GROUP", "SPACE_GROUP", "strategy_table_rst", "hub_space_table_rst"]


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
    # NNI, Lightning and torch load only when a strategy is made: ``nds list`` reads the registry alone.
    from .nni_bridge import DynamicSupernetStrategy

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


def _short_citation(paper: str) -> str:
    # "Guo et al., Single Path One-Shot NAS ..., ECCV 2020" -> "Guo et al., ECCV 2020"
    parts = [p.strip() for p in paper.split(",")]
    return f"{parts[0]}, {parts[-1]}" if len(parts) > 2 else paper


def _rst_table(header: tuple, rows: list) -> str:
    """A reStructuredText simple table whose columns fit their widest cell."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(header), rule, *map(line, rows), rule])


def strategy_table_rst() -> str:
    """The README's strategy table (name, one-line purpose, paper), generated from the registry."""
    rows = [(f"``{n}``", get_preset(n).summary, _short_citation(get_preset(n).paper)) for n in list_strategies()]
    return _rst_table(("strategy", "purpose", "paper"), rows)


def hub_space_table_rst() -> str:
    """The README's NNI hub-space table, generated from the list the hub-space tests run."""
    from .spaces.nni_hub import hub_space_rows  # our spaces and NNI load for the table only: ``nds list`` stays fast
    return _rst_table(("NNI hub space", "tested with", "searchable decisions", "strategies"),
                      hub_space_rows(len(list_strategies())))
