"""One recipe, end to end: data -> space -> supernet -> training -> search -> ranking -> report.

:func:`run_recipe` is what ``nds train`` and the nnictl trial runner call; it reads as the flow.
The stages themselves are in :mod:`nni_dynamic_supernet.stages` (also usable one by one, as
``nds search`` and ``nds evaluate`` do), the per-epoch work in :mod:`nni_dynamic_supernet.callbacks`
and the final report in :mod:`nni_dynamic_supernet.report`; their public names are re-exported here.

Data flows one way: each stage reads the :class:`Recipe` and the previous stage's output, never
another stage's internals.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from .callbacks import Diagnostics, EpochLog, Probe
from .nni_bridge.loggers import check_loggers_installed, hparam_values, make_loggers
from .progress import heartbeat, resolve
from .ranking.lookup import resolve_ground_truth
from .ranking.tables import TABLES
from .recipe import Recipe
from .report import RESULTS_FORMAT, TrainingRecord, final_metrics, write_report
from .search.run import check_search_feasible
from .stages import (CHECKPOINT_FORMAT, Run, build_data, load_supernet, predict, prepare, save_supernet, search_run,
                     train, transfer_target)

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["Run", "prepare", "train", "run_recipe", "load_supernet", "predict", "resolve_ground_truth",
           "save_supernet", "search_run", "transfer_target", "build_data", "final_metrics", "CHECKPOINT_FORMAT",
           "RESULTS_FORMAT"]


def run_recipe(recipe: Recipe, out_dir: str | Path, reporter: Any = None, resume: Optional[str] = None,
               progress: Optional[bool] = None, skip_search: bool = False,
               on_start: Optional[Callable[[], None]] = None) -> dict:
    """Train, search and rank one recipe; write results.json, best_arch.json and supernet.pt to ``out_dir``.

    Parameters
    ----------
    recipe
        The validated recipe.
    out_dir
        The run's output directory (created once the inputs are known to be good).
    reporter
        An :class:`~nni_dynamic_supernet.nni_bridge.NniReporter` (nnictl trials), or ``None``.
    resume
        A ``lightning/last.ckpt`` to resume training from.
    progress
        Lightning's training bar and bars for the search and the final ranking: ``None``
        (default) when interactive or ``output.progress`` forces them; ``True`` / ``False``
        to force. Never in an nnictl trial (quiet mode).
    skip_search
        Train and rank only.
    on_start
        Called once the recipe, data and space are known good, right before training (the run
        directory's claim records the run there: :mod:`~nni_dynamic_supernet.run_dir`).

    Returns
    -------
    dict
        The ``results.json`` content (empty on a DDP rank other than 0).
    """
    show = resolve(True if progress is None and recipe.output.progress else progress)
    out = Path(out_dir)
    check_loggers_installed(recipe.output.loggers())  # a missing wandb / mlflow is one line before any work
    run = prepare(recipe)
    truth = resolve_ground_truth(recipe, run.search_space)
    check_search_feasible(recipe.search, run.pristine_space)
    # Created only once the recipe, data, space, ground truth and constraint are known to be good:
    # bad input leaves nothing behind.
    out.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    _logger.info("%s", _start_line(recipe, truth, out, resume))
    diagnostics = Diagnostics(run) if recipe.output.diagnostics else None
    probe = Probe(run, truth, progress=show)
    epoch_log = EpochLog(recipe.training.epochs, reporter)
    callbacks = [cb for cb in (diagnostics, probe, epoch_log) if cb is not None]
    hparams = hparam_values(recipe.to_dict())
    loggers = make_loggers(recipe.output.loggers(), out, f"{recipe.strategy}-seed{recipe.seed}", hparams)
    info = train(run, out, resume=resume, progress=show, loggers=loggers, callbacks=callbacks)
    if not run.module.trainer.is_global_zero:
        return {}  # under DDP, search, ranking and every output file belong to rank 0
    record = TrainingRecord(info, truth, epoch_log, probe, diagnostics)
    with heartbeat("search and ranking", enabled=not show):
        return write_report(run, out, record, reporter=reporter, progress=show, skip_search=skip_search,
                            loggers=loggers, hparams=hparams)


def _start_line(recipe: Recipe, truth: Any, out: Path, resume: Optional[str]) -> str:
    """The first line of a run: what trains on what, for how long, ranked against which table, and where it goes."""
    if truth is None:
        table = "no ground truth to rank against"
    else:
        names = [spec.name for spec in TABLES.values() if str(spec.path) == str(truth.source)]
        table = f"ranked against the {names[0] if names else Path(str(truth.source)).name} table ({len(truth)} archs)"
    return (f"{'resuming' if resume else 'training'} {recipe.strategy} (seed {recipe.seed}) on {recipe.space.name} / "
            f"{recipe.data.name} for {recipe.training.epochs} epochs, {table}; recipe: {out / 'recipe.yaml'}")
