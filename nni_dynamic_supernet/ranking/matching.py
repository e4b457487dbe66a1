"""Pairing supernet predictions with a ground-truth table, architecture by architecture."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..arch import arch_key
from ..errors import ConfigError
from .ground_truth import GroundTruth

__all__ = ["match_predictions"]


def match_predictions(
    predictions: Sequence[Mapping[str, Any]],
    truth: GroundTruth,
    key: str = "accuracy",
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Pair supernet predictions with ground-truth accuracies by :func:`arch_key`.

    Predictions whose arch is not in the table are dropped (a search usually evaluates
    archs the table never trained). If an arch is predicted more than once, the first
    prediction is used, so each arch counts once in the ranking.

    Parameters
    ----------
    predictions
        Dicts with at least ``'arch'`` (label -> choice) and ``key`` (predicted accuracy).
    truth
        The ground-truth table.
    key
        Name of the predicted-accuracy field in each prediction.

    Returns
    -------
    matched : list of dict
        The predictions that have ground truth, in input order.
    pred : numpy.ndarray
        Their predicted accuracies (float64).
    true : numpy.ndarray
        Their ground-truth accuracies (float64), aligned with ``pred``.

    Raises
    ------
    ConfigError
        When a prediction lacks ``arch``/``key``, or when no prediction's arch is in the
        table (usually a table made for another space, or labels spelled differently).
    """
    matched: list[dict[str, Any]] = []
    pred: list[float] = []
    true: list[float] = []
    seen: set[str] = set()
    for i, item in enumerate(predictions):
        if "arch" not in item or key not in item:
            raise ConfigError(f"predictions[{i}]", sorted(item), f"each prediction needs 'arch' and {key!r}")
        value = item[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ConfigError(f"predictions[{i}].{key}", value, "must be a number")
        k = arch_key(item["arch"])
        if k in seen:
            continue
        acc = truth.accuracy(item["arch"])
        if acc is None:
            continue
        seen.add(k)
        matched.append(dict(item))
        pred.append(float(value))
        true.append(acc)
    if not matched:
        example = arch_key(predictions[0]["arch"]) if predictions else "none"
        table_example = arch_key(truth.entries[0]["arch"]) if truth.entries else "empty table"
        raise ConfigError("ground_truth", truth.source,
                          f"shares no architecture with the {len(predictions)} predictions "
                          f"(e.g. prediction {example} vs table {table_example}); use a table of the same "
                          f"space, labels and choices (this one is for space {truth.space!r})")
    return matched, np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
