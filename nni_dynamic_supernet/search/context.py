"""What a search of a trained supernet is given (:class:`SearchContext`) and what its searcher sees.

:class:`SearchSession` is the search in progress: a searcher's builder and hooks read it and may set it up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

import torch
import torch.nn as nn

from ..recipe import SearchConfig, TrainingConfig

if TYPE_CHECKING:  # pragma: no cover
    from .evaluate import SubnetEvaluator

__all__ = ["SearchContext", "SearchSession"]


@dataclass
class SearchContext:
    """Everything :func:`~nni_dynamic_supernet.search.run.search_supernet` needs to search a trained supernet.

    Attributes
    ----------
    search
        The recipe's ``search`` section.
    models
        The supernet of every partition leaf.
    partition
        The partition the supernets were trained with (routes an architecture to its leaf).
    calib_loader
        Training batches for BN recalibration (fixed, so evaluation is deterministic).
    val_loader
        The validation batches subnets are scored on.
    seed
        The recipe's seed.
    pristine_space
        The un-mutated space (parameter/FLOPs counting, validity, stand-alone training), or ``None``.
    device
        Where evaluation runs.
    training
        The recipe's ``training`` section (``successive_halving`` trains stand-alone subnets with its
        ``lr``, ``momentum`` and ``weight_decay``).
    evaluator
        An evaluator whose fixed batches were already collected (reused, not rebuilt).
    train_set
        The training split (``shifted_evolution`` draws its shifting batches from it).
    tracked
        Architectures re-scored before the search and after every generation (dicts with ``arch``,
        ``group`` and optionally ``true_accuracy``), off the budget and off ``seconds``.
    progress
        Show a bar of the evaluations (``None``: when interactive, never in an nnictl trial).
    """

    search: SearchConfig
    models: Sequence[nn.Module]
    partition: Any
    calib_loader: Optional[Iterable]
    val_loader: Optional[Iterable]
    seed: int
    pristine_space: Optional[nn.Module] = None
    device: torch.device | str = "cpu"
    training: Optional[TrainingConfig] = None
    evaluator: Optional["SubnetEvaluator"] = None
    train_set: Any = None
    tracked: Sequence[dict] = ()
    progress: Optional[bool] = None


@dataclass
class SearchSession:
    """One search in progress: what a searcher's builder and its ``prepare`` hook see and may set.

    Attributes
    ----------
    constraint
        ``arch -> bool``: the search's params/FLOPs range and the space's own validity, or ``None``.
    seed
        The searcher's seed (the recipe's seed + 1).
    context
        The search's inputs (``None`` when a searcher is built on its own).
    complexity
        The space's complexity model, or ``None`` when counting is unavailable.
    evaluator
        The subnet evaluator the search scores with; a ``prepare`` hook may set its own.
    shifter
        The supernet shifter of a searcher that moves the supernet while it searches.
    moved_models
        The supernet copies such a searcher moved (the caller's supernet stays as trained).
    """

    constraint: Optional[Callable[[dict], bool]]
    seed: int
    context: Optional[SearchContext] = None
    complexity: Any = None
    evaluator: Optional["SubnetEvaluator"] = None
    shifter: Any = None
    moved_models: list = field(default_factory=list)
