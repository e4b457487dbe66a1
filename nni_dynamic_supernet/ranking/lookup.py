"""Which ground-truth table a run ranks against: :func:`resolve_ground_truth` of a recipe's ``ranking.ground_truth``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..errors import ConfigError
from .ground_truth import GroundTruth
from .nasbench201_db import ground_truth_from_nasbench201
from .tables import TABLES, table_for_dataset

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe

__all__ = ["resolve_ground_truth"]


def resolve_ground_truth(recipe: "Recipe", search_space: dict) -> Optional[GroundTruth]:
    """The ground-truth table the recipe asks for, restricted to the space, or ``None``.

    ``auto`` uses the embedded table of the run's dataset when the run is that embedded
    benchmark (``digits_hard`` -> ``v1``, ``digits_hard_v2`` -> ``v2_26``, on ``nas_bench_201`` of
    the table's size); ``v1`` / ``v2`` / ``v2_26`` name an embedded table explicitly.

    Parameters
    ----------
    recipe
        The run's recipe (``ranking.ground_truth``, ``data.name``, ``space``).
    search_space
        ``{label: [choices]}`` of the run's space: the table is restricted to it.

    Returns
    -------
    GroundTruth or None
        ``None`` when the recipe asks for no table, or ``auto`` finds none for this run.

    Raises
    ------
    ConfigError
        For a table that is missing, unreadable or shares no architecture with the space.
    """
    source = recipe.ranking.ground_truth
    if source is None or source in ("none", ""):
        return None
    if source == "auto":
        spec = table_for_dataset(recipe.data.name)
        if spec is None or recipe.space.name != "nas_bench_201" or not spec.path.is_file():
            return None
        table = GroundTruth.load(spec.path)
        wanted = {k: v for k, v in table.space_kwargs.items() if k not in ("num_classes", "in_channels", "input_size")}
        if any(recipe.space.kwargs.get(k, v) != v for k, v in wanted.items()):
            return None
    elif source in TABLES:
        if not TABLES[source].path.is_file():
            raise ConfigError("ranking.ground_truth", source, "this embedded table is not installed; build it with "
                              f"`nds bench build --table {source}` or use another table")
        table = GroundTruth.load(TABLES[source].path)
    elif source == "nasbench201":
        table = ground_truth_from_nasbench201()
    else:
        try:
            table = GroundTruth.load(source)
        except ConfigError as exc:  # name the recipe field the user set, not the loader's argument
            raise ConfigError("ranking.ground_truth", source, exc.fix) from None
    restricted = table.restrict(search_space)
    if len(restricted) == 0:
        raise ConfigError("ranking.ground_truth", source, "shares no architecture with the search space; "
                          "use a table built for this space")
    return restricted
