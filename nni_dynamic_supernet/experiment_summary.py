"""``nds summary``: an nnictl experiment's trials as a paired comparison of recipes.

The web UI lists one number per trial. A verdict needs more: the same seeds for both
recipes of a pair, the mean paired difference with its 95 % interval, the exact sign-flip
p-value beside the paired t-test, and the trivial rankers of the same table. This module
reads an experiment through NNI's own Python API (``nni.experiment.Experiment``: a running
one by its port, a stopped one by its id, viewed on a free port and closed again), takes
each trial's ``strategy`` and ``seed`` from the parameters NNI recorded and its final
metrics, and pairs the recipes by seed.
"""
from __future__ import annotations

import json
import logging
import math
import socket
from typing import Any, Optional, Sequence

import numpy as np

from .bench.compare import DEFAULT_PAIRS
from .bench.paired_stats import paired_summary
from .atomic_io import finite_or_null
from .errors import ConfigError

__all__ = ["experiment_trials", "summarize_trials", "format_summary", "BASELINE_METRICS"]

#: Final-metric keys of the trivial rankers (the same for every trial of a table).
BASELINE_METRICS = ("params_tau", "flops_tau", "synflow_tau", "jacov_tau", "nwot_tau")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _trials_of(experiment: Any) -> list[dict]:
    trials = []
    for job in experiment.list_trial_jobs():
        params = job.hyperParameters[0].parameters if job.hyperParameters else {}
        final = job.finalMetricData[-1].data if job.finalMetricData else None
        trials.append({"trial": job.trialJobId, "status": job.status, "parameters": dict(params),
                       "final": final if isinstance(final, dict) else ({"default": final} if final is not None else None)})
    return trials


def experiment_trials(experiment_id: Optional[str] = None, port: Optional[int] = None) -> list[dict]:
    """Every trial of an nnictl experiment: id, status, the parameters NNI recorded and the final metrics.

    Parameters
    ----------
    experiment_id
        A stopped (or running) experiment's id; it is opened in NNI's view mode on a free port
        and closed again.
    port
        The web UI port of a running experiment (used instead of ``experiment_id``).
    """
    from nni.experiment import Experiment
    # NNI logs each connection twice (its own handler and the root's); what the user needs is the table.
    logging.getLogger("nni").setLevel(logging.WARNING)
    if port is not None:
        try:
            return _trials_of(Experiment.connect(port))
        except Exception as exc:  # nothing listening, or not an NNI manager
            raise ConfigError("--port", port, f"no NNI experiment answers on 127.0.0.1:{port} "
                                              f"({type(exc).__name__}); give a running experiment's port or its id") from None
    if not experiment_id:
        raise ConfigError("EXPERIMENT", experiment_id, "give an experiment id (nnictl experiment list --all) or --port")
    experiment = Experiment(None, id=experiment_id)
    if not experiment.has_checkpoint():
        raise ConfigError("EXPERIMENT", experiment_id, "no such experiment in NNI's list (nnictl experiment list --all)")
    try:
        experiment.view(port=_free_port(), non_blocking=True)
    except Exception as exc:  # a running experiment cannot be viewed: it has its own port
        raise ConfigError("EXPERIMENT", experiment_id, f"cannot be opened in view mode ({type(exc).__name__}); if it is "
                                                       "still running, pass its web UI port with --port") from None
    try:
        return _trials_of(experiment)
    finally:
        experiment.stop()


def _finite(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def summarize_trials(trials: Sequence[dict], metric: str = "kendall_tau",
                     pairs: Optional[Sequence[tuple[str, str]]] = None) -> dict:
    """Pair the succeeded trials by seed for every (technique, baseline) pair of recipes present.

    Parameters
    ----------
    trials
        As :func:`experiment_trials` returns them.
    metric
        The final-metric key compared (``kendall_tau``, ``partial_tau_params``, ``default``, ...).
    pairs
        ``(technique, baseline)`` strategy names; default: the per-paper pairs whose two
        recipes both ran.

    Returns
    -------
    dict
        ``trials`` (used ones, with strategy, seed and value), ``excluded`` (trials that did not
        succeed or lack the metric, with the reason), ``recipes`` (mean and sample SD per recipe),
        ``pairs`` (:func:`~.bench.paired_stats.paired_summary` per pair, with its seeds and the
        compute), and ``baselines`` (the trivial rankers' taus, mean over trials).
    """
    used, excluded = [], []
    for t in trials:
        params = t.get("parameters") or {}
        final = t.get("final") or {}
        value = _finite(final.get(metric))
        if t.get("status") != "SUCCEEDED":
            excluded.append({"trial": t.get("trial"), "reason": f"status {t.get('status')}"})
        elif "strategy" not in params or "seed" not in params:
            excluded.append({"trial": t.get("trial"), "reason": "its parameters set no strategy and seed"})
        elif value is None:
            excluded.append({"trial": t.get("trial"), "reason": f"no finite final {metric}"})
        else:
            used.append({"trial": t["trial"], "strategy": str(params["strategy"]), "seed": int(params["seed"]),
                         "value": value, "final": final})
    by = {(u["strategy"], u["seed"]): u for u in used}
    names = list(dict.fromkeys(u["strategy"] for u in used))
    recipes = []
    for name in names:
        values = [u["value"] for u in used if u["strategy"] == name]
        recipes.append({"strategy": name, "n": len(values), "mean": float(np.mean(values)),
                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None})
    chosen = pairs if pairs is not None else [p for p in DEFAULT_PAIRS if p[0] in names and p[1] in names]
    if pairs is None and not chosen and len(names) == 2:
        chosen = [(names[1], names[0])]  # two recipes outside the per-paper pairs: the second against the first
    out_pairs = []
    for technique, baseline in chosen:
        seeds = sorted(s for (n, s) in by if n == technique and (baseline, s) in by)
        stats = paired_summary([by[(technique, s)]["value"] for s in seeds], [by[(baseline, s)]["value"] for s in seeds])
        out_pairs.append({"technique": technique, "baseline": baseline, "metric": metric, "seeds": seeds, **stats})
    baselines = {}
    for key in BASELINE_METRICS:
        values = [v for v in (_finite(u["final"].get(key)) for u in used) if v is not None]
        if values:
            baselines[key] = float(np.mean(values))
    return {"metric": metric, "trials": [{k: v for k, v in u.items() if k != "final"} for u in used],
            "excluded": excluded, "recipes": recipes, "pairs": out_pairs, "baselines": baselines}


def format_summary(summary: dict) -> str:
    """The summary as Markdown: per recipe, per pair, the trivial rankers and the excluded trials."""
    metric = summary["metric"]
    lines = [f"| recipe | trials | {metric} (mean ± SD) |", "|---|---|---|"]
    for r in summary["recipes"]:
        sd = f" ± {r['sd']:.3f}" if r["sd"] is not None else ""
        lines.append(f"| {r['strategy']} | {r['n']} | {r['mean']:.3f}{sd} |")
    lines += ["", f"| technique vs baseline | paired seeds | {metric} diff (mean [95% CI]) | p (sign-flip) | "
                  "p (paired t) | higher |", "|---|---|---|---|---|---|"]
    for p in summary["pairs"]:
        ci = p.get("ci95")
        diff = "n/a" if p.get("diff_mean") is None else (
            f"{p['diff_mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{p['diff_mean']:+.3f}")
        fmt = (lambda v: "n/a" if v is None else f"{v:.4f}")
        lines.append(f"| {p['technique']} vs {p['baseline']} | {p['n']} | {diff} | {fmt(p.get('p_sign_flip'))} | "
                     f"{fmt(p.get('p_ttest'))} | {p['higher']}/{p['n']} |")
    if summary["baselines"]:
        lines += ["", "Trivial rankers of the same table, no training (Kendall tau-b): "
                  + ", ".join(f"{k[:-4]} {v:.3f}" for k, v in summary["baselines"].items())
                  + ". A recipe below the parameter count ranks worse than the parameter count."]
    lines += ["", "Exploratory: these seeds were not registered before the runs (see the registered verdicts)."]
    if summary["excluded"]:
        lines.append("Excluded trials: " + "; ".join(f"{e['trial']} ({e['reason']})" for e in summary["excluded"]))
    return "\n".join(lines)


def summary_json(summary: dict) -> str:
    """Strict JSON of the summary (undefined values as ``null``)."""
    return json.dumps(finite_or_null(summary), indent=1, allow_nan=False)
