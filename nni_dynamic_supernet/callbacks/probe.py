"""The probe: fixed architectures scored at probe epochs, so a run's ranking quality is watched while it trains."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytorch_lightning as pl

from ..arch import random_arch
from ..nni_bridge import SupernetCallback, SupernetModule
from ..ranking.ground_truth import GroundTruth
from ..recipe import Recipe
from ..search.evaluate import SubnetEvaluator
from ..stages import Run, predict, rank_predictions

__all__ = ["Probe", "probe_archs"]


def probe_archs(recipe: Recipe, truth: Optional[GroundTruth], search_space: dict) -> list[dict]:
    """The architectures scored at probe epochs (``ranking.probe_archs`` of them).

    With a ground truth: a fixed subset stratified by true accuracy (evenly spaced ranks),
    or the whole table, in table order, when ``probe_archs`` is at least its size. Without
    one: random architectures from the recipe's seed.

    Parameters
    ----------
    recipe
        The run's recipe.
    truth
        The ground-truth table, or ``None``.
    search_space
        ``{label: [choices]}`` of the run's space.

    Returns
    -------
    list[dict]
    """
    n = recipe.ranking.probe_archs
    if n == 0:
        return []
    if truth is not None:
        archs = truth.archs()
        if n >= len(archs):
            return list(archs)
        order = np.argsort(truth.accuracies())
        picks = np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))
        return [archs[int(order[i])] for i in picks]
    rng = np.random.RandomState(recipe.seed + 2)
    return [random_arch(search_space, rng) for _ in range(n)]


class Probe(SupernetCallback):
    """Scores the probe architectures at the first, every ``ranking.probe_every``-th and the last epoch.

    The epoch's row gets ``probe_acc`` (mean predicted accuracy), ``probe_size`` and, with a
    ground truth, ``kendall_tau`` and the headline measure; ``default`` estimates the run's final
    ``default`` (README, "web UI"): the headline, or the best probe accuracy for ``best_accuracy``.
    The last epoch scores the whole table when there is one, so its values are then the final
    ranking's (:attr:`table_ranking`, which the report reuses).

    Parameters
    ----------
    run
        The run being trained.
    truth
        The ground-truth table, or ``None``.
    progress
        Show a bar while the probe scores.
    """

    def __init__(self, run: Run, truth: Optional[GroundTruth], progress: bool = False) -> None:
        self.run = run
        self.truth = truth
        self.progress = progress
        #: The architectures scored at every probe epoch.
        self.archs = probe_archs(run.recipe, truth, run.search_space)
        #: The evaluator of the probes (fixed calibration and validation batches), built at the first probe.
        self.evaluator: Optional[SubnetEvaluator] = None
        #: ``(predictions, ranking report, leaves)`` of the last epoch's probe of the whole table.
        self.table_ranking: Optional[tuple[list, dict, int]] = None

    def on_supernet_epoch_end(self, trainer: pl.Trainer, module: SupernetModule, epoch: int, row: dict) -> None:
        """Score the probes when epoch ``epoch`` is a probe epoch."""
        recipe = self.run.recipe
        last = epoch + 1 == recipe.training.epochs
        if self.archs and (epoch == 0 or last or (epoch + 1) % recipe.ranking.probe_every == 0):
            row.update(self._probe(last))

    def _probe(self, last: bool) -> dict:
        run, truth, headline = self.run, self.truth, self.run.recipe.ranking.headline
        if self.evaluator is None:
            # Fixed calibration and validation batches: collected once, not at every probe.
            self.evaluator = run.evaluator()
        archs = truth.archs() if last and truth is not None else self.archs
        preds = predict(run, archs, evaluator=self.evaluator, progress=self.progress, what="probe")
        accs = [p["predicted_accuracy"] for p in preds]
        out = {"probe_acc": float(np.mean(accs)), "probe_size": len(preds)}
        if truth is not None:
            report = rank_predictions(run, truth, preds)
            if last:
                self.table_ranking = (preds, report, run.partition.num_leaves)
            out["kendall_tau"] = float(report["kendall_tau"])
            if headline != "best_accuracy":
                out[headline] = float(report[headline])
        # best_accuracy: the final value is the best searched subnet's; the probe's best is its estimate.
        out["default"] = out[headline] if headline in out else float(max(accs))
        return out
