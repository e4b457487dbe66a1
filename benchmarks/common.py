"""Shared helpers of the benchmark suite: building engines and timing steps side by side.

Every figure of the suite is a *ratio* measured in one process, on the same space, data
and batch size, with warm-up and interleaved repeats (A, B, A, B, ...) so that machine
noise hits both sides alike; the median and the spread over repeats are reported.

Time is this process's CPU time (:data:`CLOCK`), not wall time: the benchmark machine has
2 cores shared by several jobs (load averages of 7 to 9 while these numbers were taken),
so wall time mostly measures how long the scheduler kept us waiting. Every benchmark runs
on one thread with no loader workers, so CPU time is the work the code does.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch

#: The clock of every timing in the suite (see the module docstring).
CLOCK = time.process_time

from nni_dynamic_supernet.pipeline import Run, prepare
from nni_dynamic_supernet.recipe import Recipe

BASE = {
    "seed": 0,
    "space": {"name": "nas_bench_201", "kwargs": {"channels": 4, "cells_per_stage": 3}},
    "data": {"name": "digits_hard", "batch_size": 64},
    "training": {"epochs": 1, "num_threads": 1},
    "ranking": {"ground_truth": None, "headline": "best_accuracy"},
    "output": {"tensorboard": False, "diagnostics": False},
}


def make_run(strategy: str, total_steps: int = 1000, **overrides: Any) -> Run:
    """A prepared run with its engine built for ``total_steps`` steps (no Lightning trainer)."""
    recipe = Recipe.from_dict({**BASE, "strategy": strategy}, overrides)
    run = prepare(recipe)
    run.module.build_engine(total_steps)
    return run


def batches(run: Run, n: int) -> list:
    """``n`` fixed training batches of ``run``."""
    out = []
    while len(out) < n:
        for batch in run.loader("train", shuffle=True, drop_last=True):
            out.append(batch)
            if len(out) >= n:
                break
    return out


def time_side_by_side(fns: dict[str, Callable[[], None]], repeats: int = 7, warmup: int = 2) -> dict[str, list[float]]:
    """Run each function ``warmup`` times, then ``repeats`` rounds interleaved; seconds per round per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = CLOCK()
            fn()
            times[name].append(CLOCK() - start)
    return times


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> dict:
    """Median ratio of paired timings, with the spread (min, max) of the per-round ratios."""
    per_round = [a / b for a, b in zip(numerator, denominator)]
    return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
            "numerator_s": statistics.median(numerator), "denominator_s": statistics.median(denominator)}


def train_steps(run: Run, data: list) -> Callable[[], None]:
    """A closure that trains ``run`` on every batch of ``data`` once."""
    engine = run.module.engine
    state = {"step": 0}

    def go() -> None:
        for batch in data:
            engine.train_step(batch, state["step"] % (engine.lr_policy.total_steps - 1))
            state["step"] += 1
    return go


def state_bytes(run: Run) -> int:
    """Bytes held by every optimizer state (all MS clusters) of ``run``."""
    total = 0
    for state in run.module.engine.state_policy._states().values():
        for per_param in state.values():
            for value in per_param.values():
                if torch.is_tensor(value):
                    total += value.numel() * value.element_size()
    return total
