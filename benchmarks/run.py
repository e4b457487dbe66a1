"""Run the benchmark suite: ``python -m benchmarks.run [--only NAME ...] [--out FILE]``.

Prints one table of ratios (median and spread over interleaved repeats) and writes them
as JSON so that runs can be compared.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Optional

import torch

from . import ablation, calr_ms, evaluation, gm, nni_spos, pada, scaling, shifting, sumnas


BENCHMARKS = {
    "nni_spos_steps_per_s": nni_spos.steps_per_second,
    "calr_ms_step_time": calr_ms.step_time,
    "ms_memory": calr_ms.ms_memory,
    "pada_step_time": pada.step_time,
    "grad_variance_cost": pada.grad_variance_cost,
    "sumnas_step_time": sumnas.step_time,
    "sumnas_memory": sumnas.memory,
    "shifting_search_time": shifting.search_time,
    "evaluation_vs_forward": evaluation.evaluation_vs_forward,
    "gm_split_phase": gm.split_phase,
}

#: Run only when named with ``--only`` (slow: one Lightning fit per undone optimisation and round).
OPTIONAL = {"ablation": ablation.gains}

#: Tables of rows rather than ratios (printed after the ratios).
TABLES = {"scaling": scaling.table}

#: ``--tiny``: the smallest arguments that still run every code path of each benchmark (the CI smoke
#: test runs the whole suite this way; the numbers it prints mean nothing).
TINY = {
    "nni_spos_steps_per_s": dict(repeats=1, steps=2, warmup=1),
    "calr_ms_step_time": dict(repeats=1, steps=2), "ms_memory": dict(steps=2),
    "pada_step_time": dict(repeats=1, steps=2), "grad_variance_cost": dict(repeats=1, steps=2),
    "sumnas_step_time": dict(repeats=1, steps=1, ks=(2,)), "sumnas_memory": dict(steps=1),
    "shifting_search_time": dict(repeats=1, warmup=0), "evaluation_vs_forward": dict(repeats=1, subnets=2),
    "gm_split_phase": dict(repeats=1, gm_batches=2), "ablation": dict(repeats=1, steps=2, warmup=1),
    "scaling": dict(tiny=True),
}
TINY_BASE = {"space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
             "data": {"name": "digits_hard", "batch_size": 16}}


def main(argv: Optional[list[str]] = None) -> dict:
    """Run the selected benchmarks, print their ratios and write them as JSON; return the payload."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--only", nargs="+", choices=sorted([*BENCHMARKS, *OPTIONAL, *TABLES]))
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: a tiny space and one short repeat per benchmark (numbers are meaningless)")
    args = parser.parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    if args.tiny:
        from . import common
        common.BASE.update(TINY_BASE)
    results, tables = {}, {}
    for name in args.only or [*BENCHMARKS, *TABLES]:
        started = time.monotonic()
        kwargs = TINY.get(name, {}) if args.tiny else {}
        if name in TABLES:
            tables[name] = TABLES[name](**kwargs)["rows"]
        else:
            for key, value in {**BENCHMARKS, **OPTIONAL}[name](**kwargs).items():
                results[key] = {**value, "benchmark": name}
        print(f"[{name}: {time.monotonic() - started:.0f} s]")
    print(f"\n{'measure (ratio of CPU times, interleaved repeats)':55s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for key, value in results.items():
        lo, hi = value.get("min", value["median"]), value.get("max", value["median"])
        print(f"{key:55s} {value['median']:8.3f} {lo:8.3f} {hi:8.3f}")
    for name, rows in tables.items():
        print(f"\n{name}: {'dimension':16s} {'value':>8s} {'step ms':>9s} {'memory KiB':>11s}  note")
        for row in rows:
            print(f"{'':{len(name) + 2}s}{row['dimension']:16s} {row['value']:8d} {row['step_s'] * 1e3:9.2f} "
                  f"{row['memory_bytes'] / 1024:11.1f}  {row['note']}")
        if name == "scaling":
            note = ("CUDA: the scaling table is CPU only; benchmarks/gpu_check.sh measures the GPU"
                    if torch.cuda.is_available() else
                    "CUDA: no GPU on this machine; benchmarks/gpu_check.sh measures one where it is available")
            print(f"{'':{len(name) + 2}s}{note}")
    payload = {"results": results, "tables": tables, "clock": "process CPU time",
               "machine": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1))
    return payload


if __name__ == "__main__":
    main()
