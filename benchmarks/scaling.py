"""Scaling: how step time and memory grow with MS clusters, SUMNAS k and the DA dataset size.

Each row is one setting; step times are the median CPU seconds per step over interleaved
repeats on the suite's space, data and batch size (one thread). Memory is the bytes the
technique keeps beyond the parameters: MS optimizer states, SUMNAS snapshot + accumulator
+ inner momentum, DA per-example scores and distribution; for GM leaves, every leaf's weights and
optimizer state. No GPU was available to us, so there is no CUDA table.
"""
from __future__ import annotations

import statistics

import torch

from nni_dynamic_supernet.data.samplers import ImportanceDataSampler

from .common import CLOCK, batches, make_run, state_bytes, time_side_by_side, train_steps


def _row(dimension: str, value: int, step_s: float, memory: int, note: str = "") -> dict:
    return {"dimension": dimension, "value": value, "step_s": step_s, "memory_bytes": memory, "note": note}


def ms_clusters(repeats: int = 5, steps: int = 8, labels: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    """spos_ms with 1, 2, 3 clustering labels (5, 25, 125 clusters): step time and optimizer-state bytes."""
    torch.set_num_threads(1)
    runs = {n: make_run("spos_ms", **{"training.ms_num_labels": n}) for n in labels}
    base = make_run("spos")
    data = batches(base, steps)
    fns = {"spos": train_steps(base, data), **{f"ms{n}": train_steps(run, data) for n, run in runs.items()}}
    times = time_side_by_side(fns, repeats=repeats)
    rows = [_row("MS clusters", 1, statistics.median(times["spos"]) / steps, state_bytes(base), "spos (one state)")]
    for n, run in runs.items():
        k = 5 ** n
        rows.append(_row("MS clusters", k, statistics.median(times[f"ms{n}"]) / steps, state_bytes(run),
                         f"{run.module.engine.state_policy.num_states} of {k} states allocated after "
                         f"{(repeats + 2) * steps} steps"))
    return rows


def sumnas_k(repeats: int = 5, steps: int = 3, ks: tuple[int, ...] = (1, 2, 4, 8)) -> list[dict]:
    """sumnas with k inner steps: step time and the update rule's extra bytes (snapshot, accumulator, inner state)."""
    torch.set_num_threads(1)
    runs = {k: make_run("sumnas", **{"training.reptile_steps": k}) for k in ks}
    data = batches(runs[ks[0]], steps)
    times = time_side_by_side({f"k{k}": train_steps(run, data) for k, run in runs.items()}, repeats=repeats)
    rows = []
    for k, run in runs.items():
        extra = run.module.engine.update_rule.extra_bytes()
        rows.append(_row("SUMNAS k", k, statistics.median(times[f"k{k}"]) / steps,
                         state_bytes(run) + sum(extra.values()), "+".join(f"{n}={b}" for n, b in extra.items())))
    return rows


def da_dataset_size(sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000), batch_size: int = 64,
                    repeats: int = 3) -> list[dict]:
    """DA's per-step and per-epoch cost against the training-set size ``N`` (sampler only, synthetic scores).

    A step only buffers ``(index, score)`` of its batch (constant in ``N``); the epoch end folds
    ``N`` observations, forms ``q`` and draws ``N`` indices with one ``torch.multinomial``.
    ``step_s`` is the per-step buffering plus the epoch end amortised over ``N / batch_size`` steps.
    """
    rows = []
    for n in sizes:
        sampler = ImportanceDataSampler(n, seed=0)
        per_step, epoch_end = [], []
        for r in range(repeats):
            g = torch.Generator().manual_seed(r)
            index, scores = torch.randint(0, n, (n,), generator=g), torch.rand(n, generator=g)
            started = CLOCK()
            for start in range(0, n - batch_size + 1, batch_size):
                sampler.observe(index[start:start + batch_size], scores[start:start + batch_size])
            per_step.append((CLOCK() - started) / (n // batch_size))
            started = CLOCK()
            sampler.on_epoch_end(r, repeats + 1)
            sampler.indices(r + 1)
            epoch_end.append(CLOCK() - started)
        memory = sampler.scores.numel() * 8 + (sampler.probs.numel() * 8 if sampler.probs is not None else 0)
        step = statistics.median(per_step) + statistics.median(epoch_end) / (n // batch_size)
        rows.append(_row("DA dataset size", n, step, memory,
                         f"epoch end {statistics.median(epoch_end) * 1e3:.1f} ms"))
    return rows


def gm_leaves(repeats: int = 5, steps: int = 8, levels: tuple[int, ...] = (0, 1, 2, 3)) -> list[dict]:
    """gm_spos after 0..3 binary splits (1, 2, 4, 8 leaves): step time and weight + optimizer-state bytes.

    The splits use the ``random`` edge rule (the cut itself is timed by ``benchmarks.gm``); a step
    trains one leaf, so step time should not grow, while memory grows with the leaves.
    """
    from .gm import _draw
    torch.set_num_threads(1)
    runs = {}
    for n in levels:
        if n == 0:
            runs[n] = make_run("spos")
            continue
        run = make_run("gm_spos", **{"training.split_branching": [2] * n, "training.split_epochs": list(range(1, n + 1)),
                                     "training.gm_edge_rule": "random", "training.gm_restart": "none",
                                     "training.epochs": n + 1})
        run.module.engine.partition.maybe_split(n, run.module.engine, _draw(run))
        runs[n] = run
    data = batches(runs[0], steps)
    times = time_side_by_side({f"l{n}": train_steps(run, data) for n, run in runs.items()}, repeats=repeats)
    rows = []
    for n, run in runs.items():
        weights = sum(p.numel() * p.element_size() for p in run.module.engine.params)
        leaves = run.module.engine.partition.num_leaves
        rows.append(_row("GM leaves", leaves, statistics.median(times[f"l{n}"]) / steps, weights + state_bytes(run),
                         f"weights {weights} B + optimizer states"))
    return rows


def table(tiny: bool = False) -> dict:
    """Every scaling row, for ``benchmarks.run`` (``tiny``: one short repeat of two sizes each, a smoke test)."""
    if tiny:
        return {"rows": ms_clusters(repeats=1, steps=1, labels=(1, 2)) + sumnas_k(repeats=1, steps=1, ks=(1, 2))
                + da_dataset_size(sizes=(100, 1_000), batch_size=16, repeats=1)
                + gm_leaves(repeats=1, steps=1, levels=(0, 1))}
    return {"rows": ms_clusters() + sumnas_k() + da_dataset_size() + gm_leaves()}
