"""The trivial rankers of a ground-truth table on their own, without a supernet run.

``nds rank``, ``nds bench rescore`` and the registered verdicts rank predictions against a
table without the run's data and space at hand. :func:`table_scores` rebuilds them from the
table itself: its space and arguments (for FLOPs and the zero-cost proxies' subnets) and its
dataset (for the proxies' minibatch), and scores every architecture of the table
(:func:`~nni_dynamic_supernet.ranking.baselines.table_baseline_scores`, cached on disk).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..catalog import create_space
from ..data import build_splits
from ..ranking import GroundTruth
from ..ranking.baselines import ranking_baselines, table_baseline_scores
from ..ranking.zero_cost import PROXIES
from ..spaces.measures import complexity_model_for

__all__ = ["table_scores", "baselines_for"]


def table_scores(truth: GroundTruth) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every baseline's score for the architectures of ``truth`` (and why any is missing).

    The proxies need the table's dataset (``truth.dataset``, built with split seed 0 as the
    embedded benchmark does) and a registered space; without them only the parameter count
    (and FLOPs, when the space can be built) are reported, with the reason for the rest.
    """
    params = truth.params()
    try:
        splits = build_splits(truth.dataset, split_seed=0)
        space = create_space(truth.space, **dict(truth.space_kwargs))
        space.nds_input_shape = tuple(int(d) for d in splits.input_shape)  # type: ignore[union-attr]
    except Exception as exc:  # a dataset that needs a download or a root, or a space that is not registered
        reason = f"the table's dataset or space cannot be built here ({type(exc).__name__})"
        missing = {name: reason for name in ("flops", *PROXIES)}
        if params is None:
            missing["params"] = reason
        return ({"params": [float(p) for p in params]} if params is not None else {}), missing
    try:
        complexity: Any = complexity_model_for(space)
    except Exception:  # a space NNI's profiler cannot count
        complexity = None
    return table_baseline_scores(truth.archs(), truth.space, truth.space_kwargs, splits.train, complexity=complexity,
                                 params=params)


def baselines_for(truth: GroundTruth, predictions: Optional[Sequence[float]], scores: dict,
                  missing: dict, seed: int = 0) -> dict:
    """The ``ranking.baselines`` block for ``predictions`` (in the table's order) from :func:`table_scores`."""
    return ranking_baselines(truth.accuracies(), params=scores.get("params"), flops=scores.get("flops"),
                             proxies={k: v for k, v in scores.items() if k in PROXIES}, predictions=predictions,
                             seed=seed, missing=missing)
