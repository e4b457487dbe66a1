"""Ranking quality: compare supernet-predicted accuracies with ground-truth tables.

* :mod:`.metrics` -- Kendall tau (overall and on the stratified subset), Spearman,
  P@top-k%, top-fraction Spearman, complexity bias (CB) and rho_CC, and
  :func:`ranking_report` bundling them.
* :mod:`.ground_truth` -- the ``nds-ground-truth/1`` JSON table (:class:`GroundTruth`);
  :mod:`.noise_ceiling` -- how well its seeds agree; :mod:`.matching` -- :func:`match_predictions`.
* :mod:`.tables` -- the named embedded tables (``v1``, ``v2``, ``v2_26``) and
  :mod:`.lookup` -- :func:`~.lookup.resolve_ground_truth`, the table a recipe ranks against.
* :mod:`.nasbench201_db` -- tables from NNI's NAS-Bench-201 database
  (:func:`ground_truth_from_nasbench201`); needs ``peewee<4`` only when called.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the import graph (and type checkers) see what the names resolve to
    from .ground_truth import FORMAT, Arch, GroundTruth, arch_key
    from .matching import match_predictions
    from .metrics import (complexity_bias, complexity_convergence_correlation, kendall_tau, precision_at_top,
                          ranking_report, spearman, stratified_subset, top_fraction_spearman)
    from .nasbench201_db import (NB201_EDGES, NB201_OPS, from_nni_arch, ground_truth_from_nasbench201,
                                 locate_nasbench201_db, to_nni_arch)

# Resolved on first use (PEP 562): the command line reads the table names (:mod:`.tables`) without
# loading scipy through the metrics.
_LAZY = {
    "FORMAT": "ground_truth", "Arch": "ground_truth", "GroundTruth": "ground_truth", "arch_key": "ground_truth",
    "match_predictions": "matching",
    "kendall_tau": "metrics", "spearman": "metrics", "precision_at_top": "metrics", "top_fraction_spearman": "metrics",
    "complexity_bias": "metrics", "complexity_convergence_correlation": "metrics", "stratified_subset": "metrics",
    "ranking_report": "metrics",
    "NB201_EDGES": "nasbench201_db", "NB201_OPS": "nasbench201_db", "to_nni_arch": "nasbench201_db",
    "from_nni_arch": "nasbench201_db", "locate_nasbench201_db": "nasbench201_db",
    "ground_truth_from_nasbench201": "nasbench201_db",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


__all__ = list(_LAZY)
