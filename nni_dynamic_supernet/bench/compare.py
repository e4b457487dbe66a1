"""``nds bench compare``: several recipes x several seeds at equal epochs, ranked against the table.

Each (recipe, seed) run trains a supernet on the embedded task and predicts the accuracy
of every architecture of the ground-truth table. The comparison table gives, per recipe,
Kendall tau mean ± std over seeds, Spearman, P@top5%, CB, rho_CC, the stand-alone accuracy
of the architecture the supernet ranks first among the table's (NAS-Bench-201's
"exhaustive ranking" top-1), the final training loss and the median predicted accuracy, next
to the table's noise ceiling. Every table also carries the compute of a run -- training
steps, path forwards and CPU seconds (:mod:`.compute`) -- so that "better" is never just
"trained more". The paired table (:func:`paired_statistics`) compares each technique with its
baseline on the same seeds: mean tau difference, its standard error, and the p-values of the
paired t-test and of the Wilcoxon signed-rank test (``scipy.stats``).
Runs can go to several worker processes; each run is single-threaded, so results do not
depend on the number of workers. A finished run leaves ``bench_row.json`` in its folder with
the job that made it; a later compare into the same output folder reuses every run whose job
(recipe, seed, base recipe, overrides) is unchanged, so an interrupted compare resumes and
recipes can be added to a finished one. An override written ``RECIPE:KEY=VALUE`` applies to
that recipe only, e.g. to compare at equal path forwards.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..atomic_io import atomic_write_json, atomic_write_text, finite_or_null
from ..errors import ConfigError
from ..progress import progress_bar
from ..quiet_logs import quiet_third_party_logs
from ..ranking.tables import get_table
from ..recipe import load_recipe
from ..catalog import get_preset
from .paired_stats import sign_flip_p
from .baseline_columns import compact_baselines, format_baselines
from .worker_pool import worker_pool

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["compare_recipes", "summarize", "format_table", "paired_statistics", "paired_difference", "format_pairs",

           "table_overrides", "split_recipe_overrides", "write_report", "DEFAULT_RECIPE", "DEFAULT_PAIRS", "ROW_FILE"]

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "_resources" / "embedded.yaml"
METRICS = ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5", "spearman_top10", "spearman_top20", "cb",
           "rho_cc", "top1_true_accuracy", "seconds", "final_loss", "median_predicted_accuracy", "steps",
           "path_forwards", "cpu_seconds", "kendall_tau_partial_params")

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("spos_calr", "spos"), ("spos_ms", "spos"), ("spos_calr_ms", "spos"), ("spos_pa", "spos"), ("spos_da", "spos"),
    ("pada", "spos"), ("pada_calr_ms", "spos"), ("fairnas_calr_ms", "fairnas"), ("sumnas", "fairnas"),
    ("fsnas_calr_ms", "fsnas"), ("gm_spos", "fsnas"),
)
"""(technique, baseline) pairs of the per-paper verdicts; those whose two recipes ran are reported."""

#: Short names of the per-run measures that paired tables can compare (``metrics`` of :func:`compare_recipes`).
METRIC_NAMES: dict[str, str] = {
    "kendall_tau": "tau", "kendall_tau_stratified": "tau strat.", "spearman": "Spearman", "p_at_top5": "P@top5%",
    "spearman_top10": "Spearman top10%", "spearman_top20": "Spearman top20%", "top1_true_accuracy": "top-1 acc",
    "kendall_tau_partial_params": "partial tau | params",
}



#: What a finished run leaves in its folder: its job and its row, so that a later compare can reuse it.
ROW_FILE = "bench_row.json"


def split_recipe_overrides(overrides: Optional[dict], strategies: Sequence[str]) -> tuple[dict, dict[str, dict]]:
    """Split ``--set`` overrides into those for every run and those for one recipe.

    Parameters
    ----------
    overrides
        Dotted recipe keys; a key written ``RECIPE:KEY`` applies to ``RECIPE`` only.
    strategies
        The recipes of the comparison.

    Returns
    -------
    tuple
        ``(common, {recipe: its own overrides})``.

    Raises
    ------
    ConfigError
        When a ``RECIPE:`` prefix names a recipe that is not compared.
    """
    common: dict[str, Any] = {}
    own: dict[str, dict] = {name: {} for name in strategies}
    for key, value in (overrides or {}).items():
        name, sep, dotted = key.rpartition(":")
        if not sep:
            common[key] = value
        elif name in own and dotted:
            own[name][dotted] = value
        else:
            raise ConfigError("--set", key, f"RECIPE:KEY=VALUE must name one of --recipes ({', '.join(strategies)}) "
                                            "and a recipe key, e.g. sumnas:training.epochs=12")
    return common, own


#: What makes two jobs the same run: everything but the output folder.
_JOB_KEYS = ("strategy", "seed", "config", "overrides")


def _job_identity(job: dict) -> str:
    """The job's :data:`_JOB_KEYS` as canonical JSON."""
    return json.dumps({k: job[k] for k in _JOB_KEYS}, sort_keys=True, default=str)


def _reused_row(job: dict) -> Optional[dict]:
    """The row of a finished run of exactly this job in its output folder, or ``None``."""
    path = Path(job["out"]) / ROW_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    saved_job = saved.get("job") if isinstance(saved, dict) else None
    if not isinstance(saved_job, dict) or not set(_JOB_KEYS) <= set(saved_job):
        return None
    return saved.get("row") if _job_identity(saved_job) == _job_identity(job) else None


def table_overrides(table: Optional[str]) -> dict[str, Any]:
    """Recipe overrides that make a run rank against the named embedded table (``v1``, ``v2``, ``v2_26``).

    Parameters
    ----------
    table
        A table name, or ``None`` for no overrides (the base recipe decides).

    Returns
    -------
    dict
        Dotted recipe keys: the table's dataset, space size and ``ranking.ground_truth``.
    """
    if table is None:
        return {}
    spec = get_table(table)
    out: dict[str, Any] = {"data.name": spec.dataset, "ranking.ground_truth": spec.name, "space.name": "nas_bench_201"}
    out.update({f"space.kwargs.{k}": v for k, v in spec.recipe_space_kwargs.items()})
    return out


def _run_one(job: dict) -> dict:
    """Train one (recipe, seed) and return its ranking summary (runs in a worker process)."""
    # torch and the pipeline load in the worker: the command line's parser reads this module's names without them.
    import torch

    from ..pipeline import run_recipe
    from .compute import count_path_forwards
    torch.set_num_threads(1)
    # A spawned worker starts with default logging: without this, every run repeats Lightning's banners.
    quiet_third_party_logs()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    overrides = {**job["overrides"], "strategy": job["strategy"], "seed": job["seed"], "training.num_threads": 1,
                 "output.tensorboard": False}
    recipe = load_recipe(job["config"], overrides)
    if recipe.ranking.ground_truth is None:
        raise ConfigError("ranking.ground_truth", None, "bench compare needs a ground-truth table")
    out = Path(job["out"])
    started = time.monotonic()
    # The compare bar is the only bar: a training bar per run would interleave with it.
    with count_path_forwards() as compute:
        results = run_recipe(recipe, out, skip_search=True, progress=False)
    seconds = time.monotonic() - started
    ranking = results.get("ranking")
    if ranking is None:
        raise ConfigError("ranking.ground_truth", recipe.ranking.ground_truth,
                          "no ground truth matched this run; use the embedded recipe or pass a table")
    preds = ranking["predictions"]
    top = max(preds, key=lambda p: p["predicted_accuracy"])
    row = {k: ranking.get(k) for k in ("kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5",
                                       "spearman_top10", "spearman_top20", "cb", "rho_cc", "n_stratified",
                                       "kendall_tau_partial_params")}
    row["baselines"] = compact_baselines(ranking.get("baselines"))
    history = results["training"].get("history") or [{}]
    row.update(strategy=job["strategy"], seed=job["seed"], seconds=seconds, top1_true_accuracy=top["true_accuracy"],
               noise_ceiling=ranking["noise_ceiling"], results=str(out / "results.json"),
               epochs=int(results["training"]["epochs"]), steps=int(results["training"]["steps"]),
               path_forwards=int(compute["path_forwards"]), cpu_seconds=float(compute["cpu_seconds"]),
               final_loss=float(history[-1].get("loss", float("nan"))),
               median_predicted_accuracy=float(np.median([p["predicted_accuracy"] for p in preds])))
    # As it reads back from bench_row.json (strict JSON: an undefined measure is null), so that a fresh row and a
    # reused one are the same.
    row = finite_or_null(row)
    atomic_write_json(out / ROW_FILE, {"job": job, "row": row})
    return row


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Aggregate per-run rows into one row per recipe: mean and sample SD (``ddof = 1``) of each metric over seeds."""
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        summary: dict[str, Any] = {"strategy": strategy, "seeds": [r["seed"] for r in mine]}
        for key in METRICS:
            values = np.array([r[key] for r in mine if r.get(key) is not None], dtype=float)
            values = values[np.isfinite(values)]
            summary[key] = float(values.mean()) if len(values) else float("nan")
            summary[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out.append(summary)
    return out


def format_table(summary: Sequence[dict], noise: Optional[dict] = None, baselines: Optional[dict] = None,
                 n_stratified: Optional[int] = None) -> str:
    """A Markdown table of :func:`summarize` rows, with the trivial rankers and the noise ceiling underneath.

    Values are mean ± sample SD (``ddof = 1``) over seeds. The last columns are the compute per
    run (means over seeds): training steps, path forwards and CPU seconds, beside the wall time.
    ``baselines`` (:func:`compact_baselines`) puts the parameter count, FLOPs and zero-cost
    proxies of the same table beside the recipes.
    """
    head = ("| recipe | seeds | tau (mean ± SD) | partial tau \\| params | tau strat. | Spearman | P@top5% | Spearman top10% |"
            " Spearman top20% | CB | rho_CC | top-1 stand-alone acc | final loss | median pred. acc | steps | path fwd |"
            " CPU s/run | wall s/run |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]

    def num(s: dict, key: str, fmt: str) -> str:
        value = s.get(key, float("nan"))
        return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


    def pm(s: dict, key: str) -> str:
        mean, sd = s.get(key, float("nan")), s.get(key + "_std", float("nan"))
        if mean is None or not math.isfinite(mean):
            return "n/a"
        return f"{mean:.3f} ± {sd:.3f}" if sd is not None and math.isfinite(sd) else f"{mean:.3f}"

    for s in summary:
        lines.append(
            f"| {s['strategy']} | {len(s.get('seeds', []))} | {pm(s, 'kendall_tau')} | "
            f"{pm(s, 'kendall_tau_partial_params')} | {pm(s, 'kendall_tau_stratified')} | {pm(s, 'spearman')} | "
            f"{pm(s, 'p_at_top5')} | {pm(s, 'spearman_top10')} | {pm(s, 'spearman_top20')} | {s['cb']:.3f} | "
            f"{s['rho_cc']:.3f} | {s['top1_true_accuracy']:.2f} ± {s['top1_true_accuracy_std']:.2f} | "
            f"{num(s, 'final_loss', '.3f')} | {num(s, 'median_predicted_accuracy', '.1f')} | "
            f"{num(s, 'steps', '.0f')} | "
            f"{num(s, 'path_forwards', '.0f')} | {num(s, 'cpu_seconds', '.0f')} | {s['seconds']:.0f} |")
    lines.append("")
    extra = format_baselines(baselines, n_stratified)
    if extra:
        lines.append(extra)
    lines.append("final loss: mean training loss of the last epoch on the batches each run trained on; under DA's "
                 "importance sampling those are the hard examples, so it is not comparable with uniform sampling.")
    if noise:
        lines.append(f"Noise ceiling (seed vs seed of the ground truth): Kendall tau {noise['kendall_tau']:.3f} "
                     f"overall, {noise['kendall_tau_stratified']:.3f} on the stratified subset.")
        perfect = noise.get("kendall_tau_truth_vs_mean", math.nan)  # absent from results of earlier versions
        if not math.isnan(perfect):
            lines.append(f"A perfect ranker against the table's seed mean would reach about Kendall tau {perfect:.3f} "
                         "(normal-noise model, `nds bench info`).")
    return "\n".join(lines)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Paired statistics of ``a - b`` (one value per seed on each side, in the same order).

    Returns
    -------
    dict
        ``n``, ``mean_diff``, ``se`` (``std(ddof=1) / sqrt(n)``), ``p_ttest`` (two-sided paired
        t-test, ``scipy.stats.ttest_rel``), ``p_wilcoxon`` (two-sided Wilcoxon signed-rank
        test, ``scipy.stats.wilcoxon``) and ``p_sign_flip`` (two-sided sign-flip test,
        :func:`~.paired_stats.sign_flip_p`; exact up to 20 pairs, it cannot go below ``2 / 2**n``);
        the t and Wilcoxon p-values are NaN with fewer than 2 pairs, the t-test's when every
        difference is the same, the Wilcoxon's when every difference is 0.
    """
    from scipy import stats
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    n = len(diff)
    out: dict[str, Any] = {"n": n, "mean_diff": float(diff.mean()) if n else float("nan"),
                           "se": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                           "p_ttest": float("nan"), "p_wilcoxon": float("nan"),
                           "p_sign_flip": sign_flip_p(diff)[0] if n else float("nan")}
    if n > 1 and np.any(diff != diff[0]):
        out["p_ttest"] = float(stats.ttest_rel(a, b).pvalue)
    if n > 1 and np.any(diff != 0):
        out["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
    return out


def paired_statistics(rows: Sequence[dict], pairs: Optional[Sequence[tuple[str, str]]] = None,
                      metric: str = "kendall_tau") -> list[dict]:
    """Compare each technique with its baseline on the seeds both ran (paired by seed).

    Parameters
    ----------
    rows
        Per-run rows (``strategy``, ``seed`` and the metrics), as in ``compare.json``'s ``runs``.
    pairs
        ``(technique, baseline)`` strategy names; default :data:`DEFAULT_PAIRS`. Pairs whose
        two recipes did not both run are skipped.
    metric
        The per-run metric compared (Kendall tau by default).

    Returns
    -------
    list of dict
        Per pair: ``technique``, ``baseline``, ``seeds`` (the shared seeds), ``n``,
        ``mean_diff`` (technique minus baseline), ``se`` (standard error of the mean
        difference, ``std(ddof=1) / sqrt(n)``), ``p_ttest`` (two-sided paired t-test,
        ``scipy.stats.ttest_rel``), ``p_wilcoxon`` (two-sided Wilcoxon signed-rank test,
        ``scipy.stats.wilcoxon``; with 5 seeds it cannot go below 0.0625), both NaN with fewer
        than 2 seeds or all-equal differences, and the means of ``metric``, CB, rho_CC, steps,
        path forwards and CPU seconds of each side.
    """
    by = {(r["strategy"], int(r["seed"])): r for r in rows}
    present = {r["strategy"] for r in rows}
    out = []
    for technique, baseline in (pairs if pairs is not None else DEFAULT_PAIRS):
        if technique not in present or baseline not in present:
            continue
        seeds = sorted(s for (name, s) in by if name == technique and (baseline, s) in by)
        a = np.array([by[(technique, s)][metric] for s in seeds], dtype=float)
        b = np.array([by[(baseline, s)][metric] for s in seeds], dtype=float)
        row: dict[str, Any] = {"technique": technique, "baseline": baseline, "metric": metric, "seeds": seeds,
                               **paired_difference(a, b)}
        for side, name in (("technique", technique), ("baseline", baseline)):
            for key in (metric, "cb", "rho_cc", "steps", "path_forwards", "cpu_seconds"):
                values = [by[(name, s)].get(key) for s in seeds]
                finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
                row[f"{side}_{key}"] = float(np.mean(finite)) if finite else float("nan")
        out.append(row)
    return out


def format_pairs(pairs: Sequence[dict]) -> str:
    """A Markdown table of :func:`paired_statistics` rows (empty string when there are none)."""
    if not pairs:
        return ""
    name = METRIC_NAMES.get(pairs[0]["metric"], pairs[0]["metric"])
    lines = [f"| technique vs baseline | seeds | {name} diff (mean ± SE) | p (paired t) | p (sign-flip) | p (Wilcoxon) | "
             f"{name} technique | {name} baseline | CB technique / baseline | rho_CC technique / baseline | "
             "path fwd technique / baseline | CPU s technique / baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        m = p["metric"]
        lines.append(
            f"| {p['technique']} vs {p['baseline']} | {p['n']} | {p['mean_diff']:+.3f} ± {p['se']:.3f} | "
            f"{p['p_ttest']:.3f} | {p.get('p_sign_flip', float('nan')):.3f} | {p['p_wilcoxon']:.3f} | "
            f"{p[f'technique_{m}']:.3f} | {p[f'baseline_{m}']:.3f} | "
            f"{p['technique_cb']:.3f} / {p['baseline_cb']:.3f} | "
            f"{p['technique_rho_cc']:.3f} / {p['baseline_rho_cc']:.3f} | "
            f"{p['technique_path_forwards']:.0f} / {p['baseline_path_forwards']:.0f} | "
            f"{p['technique_cpu_seconds']:.0f} / {p['baseline_cpu_seconds']:.0f} |")
    return "\n".join(lines)


def run_jobs(jobs: Sequence[dict], workers: int) -> list[dict]:
    """Run (recipe, seed) jobs, in this process or in ``spawn`` workers; rows in job order."""
    if not jobs:
        return []
    if workers == 1:
        return [_run_one(job) for job in _progress(jobs)]
    with worker_pool(workers) as pool:
        return list(_progress(pool.map(_run_one, jobs), total=len(jobs)))


def compare_recipes(strategies: Sequence[str], seeds: Sequence[int], config: Optional[str] = None,
                    out_dir: Path = Path("bench_compare"), overrides: Optional[dict] = None,
                    workers: int = 1, plots: bool = True, pairs: Optional[Sequence[tuple[str, str]]] = None,
                    table: Optional[str] = None, metrics: Sequence[str] = ("kendall_tau",)) -> dict:
    """Run every strategy with every seed on the embedded task and compare their rankings.

    Parameters
    ----------
    strategies
        Registered strategy names.
    seeds
        Seeds per strategy.
    config
        Base recipe YAML (default: the packaged embedded recipe). All runs share its epochs.
    out_dir
        Where each run's results and ``compare.json`` / ``compare.md`` / plots go.
    overrides
        Dotted recipe keys applied to every run; ``RECIPE:KEY`` applies to that recipe only
        (:func:`split_recipe_overrides`).
    workers
        Parallel worker processes.
    pairs
        ``(technique, baseline)`` pairs for the paired table (default :data:`DEFAULT_PAIRS`,
        those whose two recipes are among ``strategies``).
    table
        Rank against this named embedded table (``v1``, ``v2``, ``v2_26``): sets the dataset, space size
        and ground truth of every run (:func:`table_overrides`); ``None`` keeps the recipe's.
    metrics
        Per-run measures that get a paired table (keys of :data:`METRIC_NAMES`); the first is
        ``payload["pairs"]``, the others ``payload["pairs_by_metric"]``. The GM-NAS paper ranks
        by ``spearman_top10``.

    Returns
    -------
    dict
        ``{"runs": [...], "summary": [...], "pairs": [...], "pairs_by_metric": {...},
        "noise_ceiling": {...}, "table": str}``.
    """
    for name in strategies:
        get_preset(name)  # unknown names fail before anything runs
    for pair in pairs or ():
        for name in pair:
            get_preset(name)
    if workers < 1:
        raise ConfigError("--workers", workers, "must be >= 1")
    metrics = list(metrics) or ["kendall_tau"]
    for metric in metrics:
        if metric not in METRIC_NAMES:
            raise ConfigError("--metrics", metric, f"use one of {', '.join(METRIC_NAMES)}")
    config = str(config or DEFAULT_RECIPE)
    out_dir = Path(out_dir)
    common, own = split_recipe_overrides(overrides, strategies)
    overrides = {**table_overrides(table), **common}
    jobs = [{"strategy": s, "seed": int(seed), "config": config, "overrides": {**overrides, **own[s]},
             "out": str(out_dir / s / f"seed{seed}")} for s in strategies for seed in seeds]
    started = time.monotonic()
    reused = [_reused_row(job) for job in jobs]
    from .existing_outputs import check_compare_out
    check_compare_out(out_dir, jobs, reused)  # never train over another job's run, never drop earlier runs
    n_reused = sum(row is not None for row in reused)
    if n_reused:
        _logger.info("bench compare: reusing %d finished runs of %d", n_reused, len(jobs))
    fresh = iter(run_jobs([job for job, row in zip(jobs, reused) if row is None], workers))
    rows = [row if row is not None else next(fresh) for row in reused]
    extra = {"wall_seconds": time.monotonic() - started, "workers": workers, "config": config,
             "overrides": overrides, "recipe_overrides": {k: v for k, v in own.items() if v}, "reused_runs": n_reused}
    return write_report(rows, out_dir, "compare", pairs=pairs, metrics=metrics, plots=plots, extra=extra)


def write_report(rows: Sequence[dict], out_dir: Path, name: str, pairs: Optional[Sequence[tuple[str, str]]] = None,
                 metrics: Sequence[str] = ("kendall_tau",), plots: bool = True,
                 extra: Optional[dict] = None) -> dict:
    """Summarize per-run rows, pair them, print the tables and write ``<name>.json`` / ``<name>.md``.

    The report of ``nds bench compare`` and ``nds bench rescore``.

    Parameters
    ----------
    rows
        Per-run rows (``strategy``, ``seed``, the metrics, ``noise_ceiling``, ``results``).
    out_dir
        Existing output folder.
    name
        Stem of the written files (``compare``, ``rescore``).
    pairs, metrics
        As in :func:`compare_recipes`.
    plots
        Also draw ``<name>_tau.png`` and ``<name>_scatter.png``.
    extra
        More keys of the JSON payload.

    Returns
    -------
    dict
        ``{"runs", "summary", "pairs", "pairs_by_metric", "noise_ceiling", "table", **extra}``.
    """
    summary = summarize(rows)
    noise = rows[0]["noise_ceiling"] if rows else None
    baselines = next((r["baselines"] for r in rows if r.get("baselines")), None)
    n_stratified = next((r["n_stratified"] for r in rows if r.get("n_stratified")), None)
    by_metric = {metric: paired_statistics(rows, pairs, metric=metric) for metric in metrics}
    text = format_table(summary, noise, baselines, n_stratified)
    for metric, table_pairs in by_metric.items():
        if table_pairs:
            text += (f"\n\nPaired by seed on {METRIC_NAMES[metric]} (technique minus baseline; SE of the mean "
                     "difference; two-sided paired t-test, exact sign-flip test and Wilcoxon signed-rank test; "
                     "exploratory unless the pair is a registered test):\n\n"
                     + format_pairs(table_pairs))
    payload = {"runs": list(rows), "summary": summary, "pairs": by_metric[metrics[0]], "pairs_by_metric": by_metric,
               "noise_ceiling": noise, "baselines": baselines, "n_stratified": n_stratified, "table": text,
               **(extra or {})}
    atomic_write_json(out_dir / f"{name}.json", payload)
    atomic_write_text(out_dir / f"{name}.md", text + "\n")
    if plots:
        from ..plots import plot_compare, plot_prediction_scatter
        plot_compare(summary, out_dir / f"{name}_tau.png", noise=noise, baselines=baselines)
        plot_prediction_scatter([r["results"] for r in rows], out_dir / f"{name}_scatter.png")
    print(text)
    return payload


def _progress(iterable: Any, total: Optional[int] = None) -> Any:
    return progress_bar(iterable, desc="bench compare", total=total, unit="run")
