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


def main() -> None:
    """Run the selected benchmarks and print/write their ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--only", nargs="+", choices=sorted([*BENCHMARKS, *OPTIONAL, *TABLES]))
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    results, tables = {}, {}
    for name in args.only or [*BENCHMARKS, *TABLES]:
        started = time.monotonic()
        if name in TABLES:
            tables[name] = TABLES[name]()["rows"]
        else:
            for key, value in {**BENCHMARKS, **OPTIONAL}[name]().items():
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
            print(f"{'':{len(name) + 2}s}CUDA: no GPU available to us.")
    payload = {"results": results, "tables": tables, "clock": "process CPU time",
               "machine": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
