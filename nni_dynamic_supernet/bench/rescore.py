"""``nds bench rescore``: rank finished runs again against another ground-truth table, without training.

A run of ``nds bench compare`` saves the supernet's predicted accuracy of every architecture
of its table (``results.json``, ``ranking.predictions``). When a better table of the same
architectures appears -- more seeds, or longer stand-alone training, like ``v2_26`` beside
``v2`` -- those predictions can be ranked against it directly: the supernets are the same,
only the ground truth changes. Rescoring the finished runs of several compares (one folder
per recipe, say) also pairs them by seed, so a verdict can move to the new table at no
training cost. Rescoring against the table a run was ranked against reproduces its row.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..arch import arch_key
from ..atomic_io import atomic_write_json, finite_or_null
from ..errors import ConfigError
from ..ranking.ground_truth import GroundTruth
from ..ranking.metrics import ranking_report
from ..ranking.tables import TABLES, resolve_table_path
from .compare import ROW_FILE, write_report
from .baseline_columns import compact_baselines
from .table_baselines import baselines_for, table_scores

__all__ = ["collect_rows", "rescore_row", "rescore_runs"]

_RANKED = ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5", "spearman_top10", "spearman_top20",
           "cb", "rho_cc", "n_stratified")


def _located(row: dict, run_dir: Path) -> dict:
    """``row`` with ``results`` pointing into ``run_dir`` when the run's file is there.

    The folder the user names wins over the path recorded at training time, so a copied, moved
    or relatively named compare folder is read from where it is now.
    """
    if (run_dir / "results.json").is_file():
        return {**row, "results": str(run_dir / "results.json")}
    return row


def collect_rows(sources: Sequence[Union[str, os.PathLike]]) -> list[dict]:
    """The per-run rows of finished compares, from their folders.

    Parameters
    ----------
    sources
        Folders of ``nds bench compare`` (with ``compare.json``) or of one of its runs (with
        ``bench_row.json``), in any mix.

    Returns
    -------
    list of dict
        One row per (strategy, seed), in the order given.

    Raises
    ------
    ConfigError
        When a folder holds neither file, or the same (strategy, seed) comes from two folders
        (the pairing would be ambiguous).
    """
    rows: list[dict] = []
    origin: dict[tuple[str, int], str] = {}
    for source in sources:
        folder = Path(source)
        if not folder.is_dir():
            raise ConfigError("RUNS", str(folder), "no such folder; give the --out folder of an `nds bench compare` "
                                                   "or one of its run folders")
        from ..json_inputs import check_compare_rows, load_json
        if (folder / "compare.json").is_file():  # truncated or wrong-typed files are one line (json_inputs)
            data = load_json(folder / "compare.json", "RUNS", "compare.json")
            runs = check_compare_rows(data.get("runs") if isinstance(data, dict) else None, str(folder / "compare.json"))
            found = [_located(row, folder / row["strategy"] / f"seed{row['seed']}") for row in runs]
        elif (folder / ROW_FILE).is_file():
            data = load_json(folder / ROW_FILE, "RUNS", ROW_FILE)
            row = check_compare_rows([data.get("row") if isinstance(data, dict) else None], str(folder / ROW_FILE))[0]
            found = [_located(row, folder)]
        else:
            raise ConfigError("RUNS", str(folder), f"holds neither compare.json nor {ROW_FILE}; give the --out folder "
                                                   "of an `nds bench compare` or one of its run folders")
        for row in found:
            key = (row["strategy"], int(row["seed"]))
            if key in origin:
                raise ConfigError("RUNS", str(folder), f"{key[0]} seed {key[1]} is also in {origin[key]}; "
                                                       "give each (recipe, seed) once")
            origin[key] = str(folder)
            rows.append(row)
    return rows


def rescore_row(row: dict, truth: GroundTruth) -> tuple[dict, dict]:
    """One run's row, ranked again against ``truth`` from the run's saved predictions.

    Parameters
    ----------
    row
        A row of ``nds bench compare`` (its ``results`` names the run's ``results.json``).
    truth
        The new table; every one of its architectures must have a saved prediction.

    Returns
    -------
    row : dict
        The row with every ranking measure, the stand-alone accuracy of the top-ranked arch
        and the noise ceiling recomputed, and ``rescored_from`` (the original results file).
    ranking : dict
        The new ranking report with its predictions, as a run's ``results.json`` holds it
        under ``ranking`` (what :func:`rescore_runs` writes to ``ranking.json``).

    Raises
    ------
    ConfigError
        When the results file is gone or lacks predictions, or the table has architectures the
        run did not predict.
    """
    path = Path(row["results"])
    try:
        results = json.loads(path.read_text())
        saved = results["ranking"]["predictions"]
        predicted = {arch_key(p["arch"]): float(p["predicted_accuracy"]) for p in saved}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ConfigError("RUNS", str(path), "is not the results.json of a ranked run (it must exist and hold "
                                             "ranking.predictions); rerun that compare") from None
    archs = truth.archs()
    missing = [a for a in archs if arch_key(a) not in predicted]
    if missing:
        raise ConfigError("--table", truth.source, f"has {len(missing)} of its {len(archs)} architectures that the "
                                                   f"run {path} did not predict (e.g. {arch_key(missing[0])}); rescore "
                                                   "only against a table of the same architectures, or rerun "
                                                   "`nds bench compare --table` on it")
    pred = [predicted[arch_key(a)] for a in archs]
    true = truth.accuracies()
    n_bins = int(results.get("recipe", {}).get("ranking", {}).get("n_bins", 400))
    num_classes = truth.space_kwargs.get("num_classes")
    report = ranking_report(pred, true, complexity=truth.params(),
                            chance=100.0 / num_classes if num_classes else None, n_bins=n_bins)
    new = {**row, **{k: report.get(k) for k in _RANKED}}
    new.update(top1_true_accuracy=float(true[int(np.argmax(pred))]), noise_ceiling=truth.noise_ceiling(n_bins),
               ground_truth=truth.source, rescored_from=str(path))
    report.update(noise_ceiling=new["noise_ceiling"], ground_truth=truth.source,
                  predictions=[{"arch": a, "predicted_accuracy": p, "true_accuracy": t}
                               for a, p, t in zip(archs, pred, true)])
    return finite_or_null(new), report  # undefined measures as null, as compare.json holds them


def rescore_runs(sources: Sequence[Union[str, os.PathLike]], table: Union[str, os.PathLike],
                 out_dir: Path = Path("bench_rescore"), pairs: Optional[Sequence[tuple[str, str]]] = None,
                 metrics: Sequence[str] = ("kendall_tau",), plots: bool = True, baselines: bool = True) -> dict:
    """Rank the finished runs of ``sources`` against ``table`` and report them as ``nds bench compare`` does.

    Parameters
    ----------
    sources
        Compare folders or run folders (:func:`collect_rows`).
    table
        A table name (``v1``, ``v2``, ``v2_26``) or a ``nds-ground-truth/1`` JSON path.
    out_dir
        Existing folder for ``rescore.json``, ``rescore.md``, the plots and one
        ``<recipe>/seed<k>/ranking.json`` per run.
    pairs, metrics
        As in :func:`~nni_dynamic_supernet.bench.compare.compare_recipes`.
    plots
        Draw ``rescore_tau.png`` and ``rescore_scatter.png``.
    baselines
        Rank the table by parameter count, FLOPs and zero-cost proxies too, and give each run
        its partial tau given parameter count (:mod:`.table_baselines`).

    Returns
    -------
    dict
        The payload of ``rescore.json``: as ``compare.json``, plus ``ground_truth`` and
        ``sources``.

    Examples
    --------
    >>> rescore_runs(["cmp_spos", "cmp_calr"], "v2_26", pairs=[("spos_calr", "spos")])  # doctest: +SKIP
    """
    path = resolve_table_path(table)
    if not path.is_file():
        hint = (f"build it with `nds bench build --table {table}`" if str(table) in TABLES
                else f"give a table name ({', '.join(TABLES)}) or the path of a JSON table")
        raise ConfigError("--table", str(table), f"no such table file {path}; {hint}")
    truth = GroundTruth.load(path)
    rows = collect_rows(sources)
    if not rows:
        raise ConfigError("RUNS", [str(s) for s in sources], "hold no finished runs")
    # Every run is ranked before anything is written, so a refusal leaves no partial output.
    ranked = [rescore_row(row, truth) for row in rows]
    if baselines:
        scores, missing = table_scores(truth)
        for new, report in ranked:
            block = baselines_for(truth, [p["predicted_accuracy"] for p in report["predictions"]], scores, missing)
            report["baselines"] = block
            report["kendall_tau_partial_params"] = new["kendall_tau_partial_params"] = block.get(
                "complexity_controlled", {}).get("partial_kendall_tau_given_params")
            new["baselines"] = compact_baselines(block)
    out_dir = Path(out_dir)
    rescored = []
    for new, report in ranked:
        run_out = out_dir / new["strategy"] / f"seed{new['seed']}"
        run_out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_out / "ranking.json", {"strategy": new["strategy"], "seed": new["seed"], "ranking": report})
        rescored.append({**new, "results": str(run_out / "ranking.json")})
    extra = {"ground_truth": str(path), "sources": [str(s) for s in sources]}
    return write_report(rescored, out_dir, "rescore", pairs=pairs, metrics=metrics, plots=plots, extra=extra)
