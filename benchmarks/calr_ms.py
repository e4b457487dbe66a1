"""CaLR + MS overheads: step time of spos_calr_ms vs spos, and MS memory vs (K - 1) x momentum bytes.

The CaLR / MS presets set ``unused_grads: zero`` (the DYNAS code's SPOS steps every parameter of
the supernet, zero gradients included), plain spos steps only the path's parameters. So the step
time is reported against both: against spos as a user runs it (what the preset costs in all), and
against spos with ``unused_grads: zero`` (the baseline of the paper's <= 1.03 bound: what CaLR's
LR factor and MS's state switch cost on their own).
"""
from __future__ import annotations

import torch

from .common import batches, make_run, ratio, state_bytes, time_side_by_side, train_steps


def step_time(repeats: int = 7, steps: int = 10) -> dict:
    """Seconds per training step of spos_calr_ms over spos, and over spos with zero gradients (target <= 1.03)."""
    torch.set_num_threads(1)
    spos, spos_zero = make_run("spos"), make_run("spos", **{"training.unused_grads": "zero"})
    calr_ms = make_run("spos_calr_ms")
    data = batches(spos, steps)
    times = time_side_by_side({"spos": train_steps(spos, data), "spos_zero": train_steps(spos_zero, data),
                               "spos_calr_ms": train_steps(calr_ms, data)}, repeats=repeats)
    return {"spos_calr_ms / spos step time": ratio(times["spos_calr_ms"], times["spos"]),
            "spos_calr_ms / spos (unused_grads zero) step time": ratio(times["spos_calr_ms"], times["spos_zero"])}


def ms_memory(steps: int = 60) -> dict:
    """Extra optimizer-state bytes of MS over SPOS, divided by (K - 1) x one momentum buffer (target <= 1.05)."""
    torch.set_num_threads(1)
    spos, ms = make_run("spos"), make_run("spos_ms")
    data = batches(spos, steps)
    train_steps(spos, data)()
    train_steps(ms, data)()
    k = ms.module.engine.state_policy.num_states
    momentum = sum(p.numel() * p.element_size() for p in ms.module.engine.params)
    extra = state_bytes(ms) - state_bytes(spos)
    return {"MS extra state / ((K-1) x momentum bytes)": {"median": extra / ((k - 1) * momentum), "K": k,
                                                          "extra_bytes": extra, "momentum_bytes": momentum}}
