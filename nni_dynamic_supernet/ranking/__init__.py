"""Ranking quality: compare supernet-predicted accuracies with ground-truth tables.

* :mod:`.metrics` -- Kendall tau (overall and on the stratified subset), Spearman,
  P@top-k%, top-fraction Spearman, complexity bias (CB) and rho_CC, and
  :func:`ranking_report` bundling them.
* :mod:`.ground_truth` -- :func:`arch_key`, the ``nds-ground-truth/1`` JSON table
  (:class:`GroundTruth`) and :func:`match_predictions`.
* :mod:`.nasbench201_db` -- tables from NNI's NAS-Bench-201 database
  (:func:`ground_truth_from_nasbench201`); needs ``peewee<4`` only when called.
"""
from .ground_truth import FORMAT, Arch, GroundTruth, arch_key, match_predictions
from .metrics import (
    complexity_bias,
    complexity_convergence_correlation,
    kendall_tau,
    precision_at_top,
    ranking_report,
    spearman,
    stratified_subset,
    top_fraction_spearman,
)
from .nasbench201_db import (
    NB201_EDGES,
    NB201_OPS,
    from_nni_arch,
    ground_truth_from_nasbench201,
    locate_nasbench201_db,
    to_nni_arch,
)

__all__ = [
    "FORMAT",
    "Arch",
    "GroundTruth",
    "arch_key",
    "match_predictions",
    "kendall_tau",
    "spearman",
    "precision_at_top",
    "top_fraction_spearman",
    "complexity_bias",
    "complexity_convergence_correlation",
    "stratified_subset",
    "ranking_report",
    "NB201_EDGES",
    "NB201_OPS",
    "to_nni_arch",
    "from_nni_arch",
    "locate_nasbench201_db",
    "ground_truth_from_nasbench201",
]
