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

from . import calr_ms, pada, shifting, sumnas

BENCHMARKS = {
    "calr_ms_step_time": calr_ms.step_time,
    "ms_memory": calr_ms.ms_memory,
    "pada_step_time": pada.step_time,
    "grad_variance_cost": pada.grad_variance_cost,
    "sumnas_step_time": sumnas.step_time,
    "sumnas_memory": sumnas.memory,
    "shifting_search_time": shifting.search_time,
}


def main() -> None:
    """Run the selected benchmarks and print/write their ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS))
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    results = {}
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        for key, value in BENCHMARKS[name]().items():
            results[key] = {**value, "benchmark": name}
        print(f"[{name}: {time.monotonic() - started:.0f} s]")
    print(f"\n{'measure':55s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for key, value in results.items():
        lo, hi = value.get("min", value["median"]), value.get("max", value["median"])
        print(f"{key:55s} {value['median']:8.3f} {lo:8.3f} {hi:8.3f}")
    payload = {"results": results, "machine": platform.platform(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
