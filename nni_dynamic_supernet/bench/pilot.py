"""Pilot of a candidate embedded-benchmark design: is its ground truth worth building?

A table is only useful for judging the papers' techniques when (1) stand-alone accuracy grows
with capacity, as on NAS-Bench-201 CIFAR-10 (Kendall tau of parameter count vs accuracy 0.58),
(2) two training seeds agree (the noise ceiling) and (3) stand-alone training is near
convergence (the ranking after E and after 2E epochs agree). :func:`pilot_design` measures
the three on a small sample of architectures before anyone pays for a full table.
Every finished job is appended to a JSON-lines log, so an interrupted pilot resumes.
"""
from __future__ import annotations

import concurrent.futures
import json
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..arch import arch_key
from ..data.digits_v2 import build_digits
from ..ranking.metrics import kendall_tau
from .build import sample_architectures
from .standalone import single_thread, train_standalone
from .worker_pool import worker_pool

__all__ = ["pilot_design", "pilot_summary"]

_DATA: Optional[dict] = None


def _init(design: Any) -> None:
    global _DATA
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
    _DATA = build_digits(design)


def _job(arch: dict, seed: int, epochs: int, space_kwargs: dict) -> dict:
    with single_thread():
        result = train_standalone(arch, seed, data=_DATA, epochs=epochs, space_kwargs=space_kwargs)
    return {"arch": arch, "seed": seed, "epochs": epochs, **result}


def pilot_summary(records: Sequence[dict], epochs: int, seeds: Sequence[int]) -> dict[str, Any]:
    """Capacity signal, noise ceiling and convergence from a pilot's job records.

    Parameters
    ----------
    records
        Dicts with ``arch``, ``seed``, ``epochs``, ``accuracy``, ``params``, ``seconds``.
    epochs
        The base budget E; records at ``2 * epochs`` measure convergence.
    seeds
        The two (or more) seeds trained at E; the first is also trained at 2E.

    Returns
    -------
    dict
        ``capacity_tau`` (params vs accuracy averaged over seeds at E), ``noise_ceiling``
        (mean Kendall tau over seed pairs at E), ``convergence_tau`` (first seed, E vs 2E),
        accuracy percentiles, seconds per job at E, and the number of archs each uses.
    """
    by = {(arch_key(r["arch"]), int(r["seed"]), int(r["epochs"])): r for r in records}
    keys = list(dict.fromkeys(arch_key(r["arch"]) for r in records))
    full = [k for k in keys if all((k, s, epochs) in by for s in seeds)]
    acc = np.array([[by[(k, s, epochs)]["accuracy"] for s in seeds] for k in full], dtype=float).reshape(-1, len(seeds))
    params = np.array([by[(k, seeds[0], epochs)]["params"] for k in full], dtype=float)
    pairs = [(i, j) for i in range(len(seeds)) for j in range(i + 1, len(seeds))]
    long = [k for k in full if (k, seeds[0], 2 * epochs) in by]
    out: dict[str, Any] = {"n_archs": len(full), "n_archs_2e": len(long)}
    if len(full) >= 3:
        mean = acc.mean(axis=1)
        out["capacity_tau"] = float(kendall_tau(params, mean))
        out["noise_ceiling"] = float(np.mean([kendall_tau(acc[:, i], acc[:, j]) for i, j in pairs])) if pairs else None
        out["acc_p10_p50_p90"] = [float(v) for v in np.percentile(mean, [10, 50, 90])]
        out["acc_max"] = float(mean.max())
        out["seconds_per_job"] = float(np.mean([by[(k, s, epochs)]["seconds"] for k in full for s in seeds]))
    if len(long) >= 3:
        out["convergence_tau"] = float(kendall_tau([by[(k, seeds[0], epochs)]["accuracy"] for k in long],
                                                   [by[(k, seeds[0], 2 * epochs)]["accuracy"] for k in long]))
        out["capacity_tau_2e"] = float(kendall_tau([by[(k, seeds[0], 2 * epochs)]["params"] for k in long],
                                                   [by[(k, seeds[0], 2 * epochs)]["accuracy"] for k in long]))
    return out


def pilot_design(design: Any, space_kwargs: dict, epochs: int, log_path: Path, n_archs: int = 40,
                 seeds: Sequence[int] = (0, 1), sample_seed: int = 7, workers: int = 1) -> dict[str, Any]:
    """Train a pilot sample of a design and return :func:`pilot_summary` (resumable).

    Parameters
    ----------
    design
        A :class:`~nni_dynamic_supernet.data.digits_v2.DigitsDesign`.
    space_kwargs
        Arguments of ``nas_bench_201`` (channels, cells per stage, input size, ...).
    epochs
        Stand-alone epochs E; the first seed is also trained for 2E.
    log_path
        JSON-lines log of finished jobs; existing lines are reused, so a rerun resumes.
    n_archs, seeds, sample_seed
        The architecture sample (:func:`~nni_dynamic_supernet.bench.build.sample_architectures`)
        and the training seeds.
    workers
        Worker processes (``spawn``, one thread each).

    Returns
    -------
    dict
        The summary, plus ``design``, ``space_kwargs`` and ``epochs``.
    """
    archs = sample_architectures(n_archs, sample_seed)
    log_path = Path(log_path)
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] \
        if log_path.exists() else []
    done = {(arch_key(r["arch"]), r["seed"], r["epochs"]) for r in records}
    jobs = [(a, s, epochs) for a in archs for s in seeds] + [(a, seeds[0], 2 * epochs) for a in archs]
    jobs = [j for j in jobs if (arch_key(j[0]), j[1], j[2]) not in done]
    with open(log_path, "a", encoding="utf-8") as fh:
        def keep(record: dict) -> None:
            records.append(record)
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        if workers == 1:
            _init(design)
            for a, s, e in jobs:
                keep(_job(a, s, e, space_kwargs))
        elif jobs:
            with worker_pool(workers, initializer=_init, initargs=(design,)) as pool:
                futures = [pool.submit(_job, a, s, e, space_kwargs) for a, s, e in jobs]
                for future in concurrent.futures.as_completed(futures):
                    keep(future.result())
    summary = pilot_summary(records, epochs, list(seeds))
    summary.update(design=design.describe(), space_kwargs=dict(space_kwargs), epochs=epochs)
    return summary
