"""The tiny recipe behind the end-to-end ``nds`` tests (bad input, divergence, resume, DDP).

A 2-channel, 1-cell NAS-Bench-201 on a small ``digits_hard`` subset, no ground truth, no
TensorBoard or plots: seconds per run. Each test changes only the fields it is about.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

BASE: dict = {
    "strategy": "spos", "seed": 0,
    "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
    "data": {"name": "digits_hard", "batch_size": 16, "eval_batch_size": 200, "train_subset": 128},
    "training": {"epochs": 1, "max_steps_per_epoch": 1, "num_threads": 1},
    "search": {"searcher": "random", "max_evaluations": 2, "bn_batches": 1},
    "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 0},
    "output": {"tensorboard": False, "plots": False},
}


def tiny_recipe(**changes: Any) -> dict:
    """:data:`BASE` with ``changes``: a dict updates that section's fields, anything else replaces the key."""
    recipe = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key].update(value)
        else:
            recipe[key] = value
    return recipe


def write_recipe(path: Path, **changes: Any) -> Path:
    """Write :func:`tiny_recipe` to ``path`` (JSON, which is YAML) and return the path."""
    path.write_text(json.dumps(tiny_recipe(**changes)))
    return path
