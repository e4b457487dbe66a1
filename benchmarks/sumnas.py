"""SUMNAS overheads: step time of sumnas(k) vs k x fairnas, and the Reptile buffers vs parameter bytes.

A SUMNAS step runs ``k`` forward/backward passes per path where FairNAS runs one, so the
fair baseline is ``k`` FairNAS steps. What remains is the Reptile bookkeeping: snapshot,
restore and difference of the path's tensors, and ``k`` small inner SGD steps per path
(target: ratio <= 1.05).
"""
from __future__ import annotations

import torch

from .common import batches, make_run, ratio, state_bytes, time_side_by_side, train_steps


def step_time(repeats: int = 9, steps: int = 4, ks: tuple[int, ...] = (2, 4)) -> dict:
    """Seconds per step of sumnas(k) divided by k x seconds per step of fairnas, for each k."""
    torch.set_num_threads(1)
    fair = make_run("fairnas")
    runs = {k: make_run("sumnas", **{"training.reptile_steps": k}) for k in ks}
    data = batches(fair, steps)
    fns = {"fairnas": train_steps(fair, data), **{f"sumnas_k{k}": train_steps(run, data) for k, run in runs.items()}}
    times = time_side_by_side(fns, repeats=repeats)
    return {f"sumnas(k={k}) / ({k} x fairnas) step time": ratio(times[f"sumnas_k{k}"], [k * t for t in times["fairnas"]])
            for k in ks}


def memory(steps: int = 3) -> dict:
    """Persistent extra bytes beyond the parameters (and their gradients) of fairnas and sumnas.

    fairnas keeps its SGD momentum (1x parameters). sumnas keeps the outer optimizer state (none: the
    paper's outer SGD has no momentum) plus the update rule's snapshot and accumulator (2x), and at
    its peak the inner momentum of the path being adapted (reset mode: one path's share, freed after
    the path); ``extra_bytes()`` reports each. Values are in units of parameter bytes.
    """
    torch.set_num_threads(1)
    fair, sumnas = make_run("fairnas"), make_run("sumnas")
    data = batches(fair, steps)
    train_steps(fair, data)()
    train_steps(sumnas, data)()
    params = sum(p.numel() * p.element_size() for p in fair.module.engine.params)
    fair_extra = state_bytes(fair)
    rule = sumnas.module.engine.update_rule.extra_bytes()
    sum_extra = state_bytes(sumnas) + sum(rule.values())
    detail = {"param_bytes": params, "fairnas_bytes": fair_extra, "sumnas_bytes": sum_extra, **rule}
    return {
        "fairnas extra memory / parameter bytes": {"median": fair_extra / params, **detail},
        "sumnas extra memory / parameter bytes": {"median": sum_extra / params, **detail},
        "sumnas snapshot+accumulator / parameter bytes": {"median": (rule["snapshot"] + rule["accumulator"]) / params,
                                                          **detail},
    }
