"""A tiny ``nds bench compare`` setting shared by the compare and rescore tests: 12 archs, 2 steps a run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nni_dynamic_supernet.bench.paired_stats import min_detectable_effect
from nni_dynamic_supernet.ranking import GroundTruth

SPACE = {"channels": 2, "cells_per_stage": 1}


def tiny_table(path: Path) -> Path:
    """Write a 12-arch, 2-seed table of the tiny NAS-Bench-201 to ``path``."""
    rng = np.random.RandomState(0)
    ops = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
    labels = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]
    archs, seen = [], set()
    while len(archs) < 12:
        arch = {label: ops[rng.randint(5)] for label in labels}
        if json.dumps(arch, sort_keys=True) not in seen:
            seen.add(json.dumps(arch, sort_keys=True))
            archs.append(arch)
    per_seed = [{"0": float(a), "1": float(a + rng.randn())} for a in rng.uniform(20, 80, len(archs))]
    truth = GroundTruth.from_pairs(archs, [float(np.mean(list(p.values()))) for p in per_seed], space="nas_bench_201",
                                   space_kwargs=SPACE, dataset="digits_hard", metric="test_accuracy", recipe={},
                                   seeds=[0, 1], per_seed=per_seed, params=[1000 + i for i in range(len(archs))])
    truth.save(path)
    return path


def tiny_config(tmp_path: Path) -> Path:
    """A base recipe that trains 2 steps and ranks against :func:`tiny_table` (written beside it)."""
    table = tiny_table(tmp_path / "gt.json")
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump({
        "space": {"name": "nas_bench_201", "kwargs": SPACE},
        "data": {"name": "digits_hard", "batch_size": 32, "eval_batch_size": 200},
        "training": {"epochs": 1, "max_steps_per_epoch": 2},
        "search": {"bn_batches": 1},
        "ranking": {"ground_truth": str(table), "probe_archs": 2},
        "output": {"diagnostics": False},
    }))
    return config


def tiny_registration(folder: Path, name: str = "tiny", **changes: Any) -> Path:
    """A registered test of spos_calr_ms vs spos on :func:`tiny_config` (seeds 7 and 8); ``changes`` edit its fields."""
    config = tiny_config(folder)
    doc = {"format": "nds-verdict/1", "name": name, "paper": "a paper", "claim": "CaLR + MS ranks better",
           "kind": "recipes", "technique": {"recipe": "spos_calr_ms", "set": {"training.epochs": 1}},
           "baseline": {"recipe": "spos", "set": {"training.epochs": 1}}, "config": config.name,
           "table": "gt.json", "set": {"ranking.probe_every": 100000, "output.plots": False},
           "measure": "kendall_tau", "seeds": [7, 8], "n": 2, "alpha": 0.05, "power": 0.8, "pilot_sd": 0.1,
           "pilot_source": "made up for the test", "mde": round(min_detectable_effect(0.1, 2), 4),
           "registered": "2026-12-07"}
    doc.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
