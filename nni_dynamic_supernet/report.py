"""The final report of a trained run: search, ranking, headline, results.json, figures and NNI's final metrics.

:func:`write_report` is the second half of :func:`~nni_dynamic_supernet.pipeline.run_recipe`. It
writes ``supernet.pt``, ``best_arch.json`` and ``results.json`` (format :data:`RESULTS_FORMAT`,
the contract with plotting, the CLI and the tests), draws the figures, and sends the final dict
(:func:`final_metrics`) to TensorBoard and nnictl.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from .atomic_io import atomic_write_json
from .callbacks import Diagnostics, EpochLog, Probe
from .ranking.baselines import ranking_baselines, table_baseline_scores
from .ranking.ground_truth import GroundTruth
from .ranking.zero_cost import PROXIES
from .recipe import Recipe
from .spaces.measures import complexity_model_for
from .stages import Run, predict, rank_predictions, save_supernet, search_run, space_kwargs
from .nni_bridge.loggers import hparam_values, log_final

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["RESULTS_FORMAT", "TrainingRecord", "write_report", "final_metrics", "best_true_accuracy"]

RESULTS_FORMAT = "nds-results/1"


@dataclass
class TrainingRecord:
    """What a finished training leaves for the report.

    Attributes
    ----------
    info
        :func:`~nni_dynamic_supernet.stages.train`'s timing and step counts.
    truth
        The ground-truth table the run ranks against, or ``None``.
    epoch_log
        The per-epoch rows.
    probe
        The probe (its evaluator and its last-epoch ranking of the whole table are reused).
    diagnostics
        The training diagnostics, or ``None`` when ``output.diagnostics`` is off.
    """

    info: dict
    truth: Optional[GroundTruth]
    epoch_log: EpochLog
    probe: Probe
    diagnostics: Optional[Diagnostics] = None


def write_report(run: Run, out_dir: Path, record: TrainingRecord, *, reporter: Any = None, progress: bool = False,
                 skip_search: bool = False, loggers: Sequence[Any] = (), hparams: Optional[dict] = None) -> dict:
    """Search, rank and report a trained run; return the results dict (the ``results.json`` content).

    Parameters
    ----------
    run
        The trained run.
    out_dir
        Where ``supernet.pt``, ``best_arch.json``, ``results.json`` and the figures go.
    record
        What training left.
    reporter
        An :class:`~nni_dynamic_supernet.nni_bridge.NniReporter` for the final metrics, or ``None``.
    progress
        Show bars for the search and the ranking.
    skip_search
        Train and rank only.
    loggers
        The run's Lightning loggers: the final metrics (and on TensorBoard the figures) are logged
        against ``hparams``.
    hparams
        The recipe as hyperparameters (:func:`~nni_dynamic_supernet.nni_bridge.loggers.hparam_values`).

    Returns
    -------
    dict
    """
    recipe, truth = run.recipe, record.truth
    checkpoint = save_supernet(run, out_dir / "supernet.pt")
    results: dict = {
        "format": RESULTS_FORMAT, "strategy": recipe.strategy, "seed": recipe.seed, "recipe": recipe.to_dict(),
        "checkpoint": str(checkpoint.resolve()),
        "training": {**record.info, "epochs": recipe.training.epochs, "history": record.epoch_log.history},
        "partition": run.partition.describe(),
        "partition_tree": run.partition.tree(),
        # What the sub-supernets cost: steps per leaf and in total (per_leaf trains every leaf on every step).
        "partition_budget": run.partition.budget_report(),
        "sampling": run.module.engine.sampling_summary(),
    }
    if record.diagnostics is not None:
        results["diagnostics"] = record.diagnostics.summary(truth.archs() if truth is not None else record.probe.archs)
    evaluator = record.probe.evaluator or run.evaluator()
    if not skip_search:
        found = search_run(run, out_dir, evaluator=evaluator, truth=truth, progress=progress)
        best = found["top"][0]
        results["search"] = {k: v for k, v in found.items() if k != "history"}
        results["search"]["history_size"] = len(found["history"])
        results["best_arch"] = best["arch"]
        results["best"] = {k: v for k, v in best.items() if k != "arch"}
        atomic_write_json(out_dir / "best_arch.json", best["arch"])
    if truth is not None:
        results["ranking"] = _final_ranking(run, record, evaluator, progress)
    if "best" in results:
        results["best"]["true_accuracy"], missing = best_true_accuracy(recipe, truth, results["best_arch"])
        if missing:
            results["best"]["true_accuracy_missing"] = missing
    results["headline"], default = _headline(recipe, results)
    # Strict JSON has no NaN: an undefined headline is null, and default_missing says why.
    results["default"] = default if math.isfinite(default) else None
    if results["default"] is None:
        results["default_missing"] = _default_missing(results["headline"], skip_search)
    atomic_write_json(out_dir / "results.json", results)
    figures = []
    if recipe.output.plots:
        _logger.info("figures: drawing them beside %s", out_dir / "results.json")
        # matplotlib loads (and plots selects its Agg backend) only for a run that draws figures.
        from .plots import plot_results
        figures = plot_results(results, out_dir)
    final = final_metrics(results)
    if loggers:
        log_final(loggers, hparams or hparam_values(recipe.to_dict()), final, figures, step=recipe.training.epochs)
    if reporter is not None:
        reporter.final(final)
    return results


def _final_ranking(run: Run, record: TrainingRecord, evaluator: Any, progress: bool) -> dict:
    """The ranking of every table architecture, with the predictions, the noise ceiling and the table's name."""
    truth = record.truth
    assert truth is not None
    # The last epoch's probe scored the whole table with the same supernet and evaluator: reuse it
    # (unless a partition split after that probe changed the supernets).
    preds, report, leaves = record.probe.table_ranking or (None, None, None)
    if preds is not None and report is not None and leaves == run.partition.num_leaves:
        _logger.info("ranking: the last epoch's probe of the %d archs of the table is the final ranking "
                     "(kendall_tau=%.4f)", len(preds), report["kendall_tau"])
    else:
        preds = predict(run, truth.archs(), evaluator=evaluator, progress=progress, what="ranking")
        report = rank_predictions(run, truth, preds)
    true = truth.accuracies()
    if run.recipe.ranking.baselines:
        report["baselines"] = _baselines(run, truth, [p["predicted_accuracy"] for p in preds])
        report["kendall_tau_partial_params"] = report["baselines"].get("complexity_controlled", {}).get(
            "partial_kendall_tau_given_params")
    report["noise_ceiling"] = truth.noise_ceiling(run.recipe.ranking.n_bins)
    report["ground_truth"] = truth.source
    report["predictions"] = [{"arch": p["arch"], "predicted_accuracy": p["predicted_accuracy"],
                              "true_accuracy": t} for p, t in zip(preds, true)]
    return report


def _baselines(run: Run, truth: GroundTruth, predictions: list) -> dict:
    """The trivial rankers of the table (params, FLOPs, zero-cost proxies) and the supernet's score beyond size."""
    try:
        complexity = complexity_model_for(run.pristine_space)
    except Exception:  # a space the complexity model cannot count: FLOPs are then reported as missing
        complexity = None
    space, kwargs = ((truth.space, truth.space_kwargs) if truth.space == run.recipe.space.name and truth.space_kwargs
                     else (run.recipe.space.name, space_kwargs(run.recipe, run.splits)))
    scores, missing = table_baseline_scores(truth.archs(), space, kwargs, run.splits.train, complexity=complexity,
                                            params=truth.params())
    return ranking_baselines(truth.accuracies(), params=scores.get("params"), flops=scores.get("flops"),
                             proxies={k: v for k, v in scores.items() if k in PROXIES}, predictions=predictions,
                             seed=run.recipe.seed, missing=missing)


def _default_missing(headline: str, skip_search: bool) -> str:
    """Why a run has no ``default`` value (results.json says it beside ``"default": null``)."""
    if headline == "best_accuracy" and skip_search:
        return ("no search ran (--skip-search) and there is no ground truth to rank against "
                "(ranking.ground_truth), so there is no headline value")
    if headline == "best_accuracy":
        return "the best searched subnet has no finite accuracy"
    return f"{headline} is undefined for these predictions (e.g. every predicted accuracy is equal)"


def _headline(recipe: Recipe, results: dict) -> tuple[str, float]:
    """The headline measure and its value, NNI's ``default`` (``best_accuracy`` when a ranking is missing)."""
    headline = recipe.ranking.headline
    if headline != "best_accuracy" and "ranking" not in results:
        _logger.warning("ranking.headline=%s needs a ground truth; reporting best_accuracy instead", headline)
        headline = "best_accuracy"
    if headline == "best_accuracy":
        default = results.get("best", {}).get("accuracy", float("nan"))
    else:
        default = results["ranking"][headline]
    return headline, float(default)


def best_true_accuracy(recipe: Recipe, truth: Optional[GroundTruth], arch: dict) -> tuple[Optional[float], str]:
    """The ground-truth accuracy of the best searched architecture, or ``None`` and the reason it is missing.

    Parameters
    ----------
    recipe
        The run's recipe (a transferred search has no ground truth of its data).
    truth
        The ground-truth table, or ``None``.
    arch
        The best searched architecture.

    Returns
    -------
    tuple
        ``(accuracy, "")`` or ``(None, reason)``.
    """
    if recipe.search.transfer_to is not None:
        return None, "searched on the transfer target; the ground truth is of the source data"
    if truth is None:
        return None, "no ground-truth table (ranking.ground_truth)"
    value = truth.accuracy(arch)
    if value is None:
        return None, (f"best_arch is not among the {len(truth)} architectures of the ground-truth table; "
                      "train it stand-alone to know it")
    return float(value), ""


def final_metrics(results: dict) -> dict:
    """The final dict reported to nnictl: ``default`` plus one short key per headline figure.

    Parameters
    ----------
    results
        A ``results.json`` content.

    Returns
    -------
    dict
        Finite floats (a NaN becomes 0, which NNI can plot), and ``best_arch`` as one string.
    """
    # NNI needs a number: an undefined default is reported as 0.0, with the reason beside it.
    out: dict = {"default": _finite(results["default"])}
    if results.get("default_missing"):
        out["default_missing"] = results["default_missing"]
    ranking = results.get("ranking", {})
    for key in ("kendall_tau", "spearman", "p_at_top5", "kendall_tau_stratified", "cb", "rho_cc"):
        if key in ranking:
            out[key] = _finite(ranking[key])
    for name, block in ranking.get("baselines", {}).items():
        if isinstance(block, dict) and block.get("kendall_tau") is not None:
            out[f"{name}_tau"] = _finite(block["kendall_tau"])
    if ranking.get("kendall_tau_partial_params") is not None:
        out["partial_tau_params"] = _finite(ranking["kendall_tau_partial_params"])
    best = results.get("best", {})
    if "accuracy" in best:
        out["best_acc"] = _finite(best["accuracy"])
    for key in ("params", "flops", "true_accuracy"):
        if key in best and best[key] is not None:
            out[f"best_{key}" if key != "true_accuracy" else "best_true_acc"] = _finite(best[key])
    if best.get("true_accuracy_missing"):
        out["best_true_acc_missing"] = best["true_accuracy_missing"]
    if "best_arch" in results:
        out["best_arch"] = ",".join(f"{k}={v}" for k, v in results["best_arch"].items())
    return out


def _finite(value: Any) -> float:
    if value is None:
        return 0.0
    value = float(value)
    return value if math.isfinite(value) else 0.0
