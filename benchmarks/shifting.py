"""Supernet shifting vs plain evolution from the same SPOS checkpoints, on the embedded task.

``python -m benchmarks.shifting --checkpoints A/supernet.pt B/supernet.pt ... --out DIR [--table v2]``

For every checkpoint (one SPOS supernet per seed) the searches run side by side in one
process, with identical search settings and seeds: plain evolution, shifted evolution
as in the paper (evaluate first, one accumulated step per generation) and as in the
official code (train first, a step after every batch). Per search it reports

* the Kendall tau-b among the top-10 searched architectures: their final supernet
  scores against their stand-alone accuracies (the local ranking shifting targets);
* the stand-alone accuracy of the best architecture;
* the search seconds (evaluation + shifting, without diagnostics) and the ratio
  shifted / plain.

Stand-alone accuracy is a lookup in the named embedded table (``--table``, the one the
checkpoints were trained against); an architecture the table lacks (a table holds 150-160 of
the 15,625 cells) is trained with the table's own protocol (``bench/standalone.py``, with
``--workers`` processes) and cached per seed in ``DIR/standalone_cache_<table>.json``. The
accuracy is the mean over ``--seeds`` (default: the table's seeds). Since searches are logged,
rerunning with another ``--table`` ranks the same searches against it without searching again.

Shifting uses the recipe's settings (the paper's 20 x 32 samples per candidate at LR 1e-4);
``--set`` changes them for the shifted variants, ``--search`` the search of every variant.
Plain and shifted searches are paired by checkpoint, and the paired differences of both
measures come with a paired t-test and a Wilcoxon signed-rank p-value (``scipy.stats``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Optional

import torch

from nni_dynamic_supernet.atomic_io import atomic_write_json
from nni_dynamic_supernet.bench.standalone_lookup import StandaloneAccuracy
from nni_dynamic_supernet.ranking.tables import TABLES, get_table
from nni_dynamic_supernet.pipeline import load_supernet, search_run
from nni_dynamic_supernet.ranking import kendall_tau

#: Search settings shared by every variant: the embedded template's evolution (100 evaluations).
SEARCH = {"search.max_evaluations": 100, "search.population": 20, "search.generations": 5,
          "search.select_num": 5, "search.mutation_num": 10, "search.crossover_num": 10, "search.top_k": 10,
          "search.track_archs": 0, "search.save_shifted": False, "output.plots": False}
#: Shifting with the recipe's own samples per candidate (the paper's 20 x 32).
SHIFT = {"search.searcher": "shifted_evolution"}
VARIANTS: dict[str, dict] = {
    "plain": {"search.searcher": "evolution"},
    "shift_paper": {**SHIFT, "search.shift_update": "per_generation", "search.shift_order": "evaluate_first"},
    "shift_code": {**SHIFT, "search.shift_update": "per_candidate", "search.shift_order": "train_first"},
}


def run_one(checkpoint: str, variant: str, seed: int, extra: Optional[dict] = None,
            search: Optional[dict] = None) -> dict:
    """One search of ``variant`` on ``checkpoint``; the top-10 with scores and the search seconds."""
    overrides = {**SEARCH, **(search or {}), **VARIANTS[variant], "seed": seed, **(extra or {})}
    run = load_supernet(checkpoint, overrides)
    found = search_run(run)
    return {"variant": variant, "seed": seed, "seconds": found["seconds"], "evaluations": found["evaluations"],
            "top": [{"arch": r["arch"], "accuracy": r["accuracy"]} for r in found["top"]],
            "shift": found["diagnostics"].get("shift")}


def score(result: dict, standalone: StandaloneAccuracy) -> dict:
    """Kendall tau among the top-10 and the best architecture's stand-alone accuracy."""
    pred = [r["accuracy"] for r in result["top"]]
    true = [standalone(r["arch"]) for r in result["top"]]
    return {"tau_top10": float(kendall_tau(pred, true)), "best_standalone": true[0], "top10_standalone": true}


def search_time(repeats: int = 3, warmup: int = 1) -> dict:
    """Seconds of one shifted search / one plain search, interleaved repeats on the same (untrained) supernet.

    A quick entry for ``benchmarks.run``: the cost of shifting in the paper's mode (evaluate
    first, one step per generation) at one batch of 64 per candidate, in the official BN order
    (the shifting passes are the candidate's recalibration, ``search.shift_bn: shift``, the
    default) and in the other order (a separate recalibration per score,
    ``shift_bn: recalibrate``), and at the paper's 640 samples per candidate (20 x 32, the
    recipe default), without the noise of separate processes.
    """
    from nni_dynamic_supernet.search.run import SearchContext, build_evaluator, search_supernet

    from .common import make_run, ratio, time_side_by_side
    torch.set_num_threads(1)
    small = {"search.max_evaluations": 30, "search.population": 10, "search.generations": 3,
             "search.select_num": 3, "search.mutation_num": 5, "search.crossover_num": 5,
             "search.shift_final_reevaluate": 3}
    paper = VARIANTS["shift_paper"]
    settings = {"plain": VARIANTS["plain"], "shift_paper": paper,
                "shift_paper_recalibrate": {**paper, "search.shift_bn": "recalibrate"},
                "shift_paper_640": {**paper, "search.shift_iters": 20, "search.shift_batch_size": 32}}
    runs = {name: make_run("spos", **small, **over) for name, over in settings.items()}
    plain = runs["plain"]
    evaluator = build_evaluator(plain.recipe.search, plain.models, plain.partition, plain.calib_loader(), plain.val_loader())
    seconds: dict[str, list[float]] = {name: [] for name in runs}

    def go(name: str):
        def fn() -> None:
            run = runs[name]
            context = SearchContext(run.recipe.search, plain.models, plain.partition, None, None, seed=run.recipe.seed,
                                    pristine_space=plain.pristine_space, evaluator=evaluator,
                                    train_set=plain.splits.train, training=run.recipe.training)
            seconds[name].append(search_supernet(context).report["seconds"])
        return fn
    time_side_by_side({name: go(name) for name in runs}, repeats=repeats, warmup=warmup)
    plain_s = seconds["plain"][warmup:]
    return {"shifted / plain evolution search time (paper mode, 1 x 64 per candidate, official BN order)":
            ratio(seconds["shift_paper"][warmup:], plain_s),
            "shifted / plain evolution search time (paper mode, 1 x 64 per candidate, separate BN recalibration)":
            ratio(seconds["shift_paper_recalibrate"][warmup:], plain_s),
            "shifted / plain evolution search time (paper mode, 640 samples per candidate, official BN order)":
            ratio(seconds["shift_paper_640"][warmup:], plain_s)}


def paired(rows: list[dict], variant: str, key: str) -> dict:
    """``variant`` minus plain on ``key``, paired by checkpoint (searches with a NaN measure left out)."""
    from nni_dynamic_supernet.bench.compare import paired_difference
    plain = {r["seed"]: r[key] for r in rows if r["variant"] == "plain"}
    pairs = [(r[key], plain[r["seed"]]) for r in rows
             if r["variant"] == variant and r["seed"] in plain and math.isfinite(r[key]) and math.isfinite(plain[r["seed"]])]
    return {"variant": variant, "measure": key,
            **paired_difference([a for a, _ in pairs], [b for _, b in pairs])}


def main(argv: Optional[list[str]] = None) -> dict:
    """Run every variant on every checkpoint, print the tables and write ``DIR/shifting.json``.

    Finished searches are appended to ``DIR/rows.jsonl``, so an interrupted run resumes.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shifting")
    parser.add_argument("--checkpoints", nargs="+", required=True, help="one SPOS supernet.pt per seed")
    parser.add_argument("--out", default="benchmarks/shifting_out")
    parser.add_argument("--table", default="v1", choices=list(TABLES),
                        help="the embedded table the checkpoints rank against")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="stand-alone seeds of the ground truth (default: the table's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that train the architectures the table lacks (each single-threaded)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for the shifted variants, e.g. search.shift_lr=0.01")
    parser.add_argument("--search", action="append", default=[], metavar="KEY=VALUE",
                        help="search override for every variant, e.g. search.generations=10")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: use 1 or more worker processes")
    if args.seeds is not None and (len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0):
        parser.error(f"--seeds {' '.join(map(str, args.seeds))}: give distinct seeds, each 0 or more")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("nni").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    from nni_dynamic_supernet.recipe import parse_override
    extra = dict(parse_override(text) for text in args.set)
    search = dict(parse_override(text) for text in args.search)
    spec = get_table(args.table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    standalone = StandaloneAccuracy(out / f"standalone_cache_{spec.name}.json", spec, args.seeds)
    log = out / "rows.jsonl"
    rows: list[dict] = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    done = {(r["checkpoint"], r["variant"]) for r in rows}
    with open(log, "a", encoding="utf-8") as fh:
        for seed, checkpoint in enumerate(args.checkpoints):
            for variant in args.variants:  # side by side: the variants of one seed run back to back
                if (checkpoint, variant) in done:
                    continue
                result = run_one(checkpoint, variant, seed, extra if variant != "plain" else None, search)
                row = {**result, "checkpoint": checkpoint}
                rows.append(row)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(f"seed {seed} {variant:12s} {result['seconds']:7.1f} s  best supernet acc "
                      f"{result['top'][0]['accuracy']:.2f}", flush=True)
    rows = [r for r in rows if r["checkpoint"] in args.checkpoints and r["variant"] in args.variants]
    standalone.prefetch([t["arch"] for r in rows for t in r["top"]], args.workers)
    for row in rows:
        row.update(score(row, standalone))
        plain = next(r for r in rows if r["seed"] == row["seed"] and r["variant"] == "plain")
        row["time_ratio"] = row["seconds"] / plain["seconds"]
    print(f"\n{'seed':>4s} {'variant':12s} {'tau top-10':>10s} {'best stand-alone %':>18s} "
          f"{'search s':>9s} {'ratio':>6s}")
    for row in rows:
        print(f"{row['seed']:4d} {row['variant']:12s} {row['tau_top10']:10.3f} {row['best_standalone']:18.2f} "
              f"{row['seconds']:9.1f} {row['time_ratio']:6.3f}")
    means = {}
    for variant in args.variants:
        sel = [r for r in rows if r["variant"] == variant]
        means[variant] = {k: float(statistics.mean(r[k] for r in sel))
                          for k in ("tau_top10", "best_standalone", "seconds", "time_ratio")}
        m = means[variant]
        print(f"{'mean':>4s} {variant:12s} {m['tau_top10']:10.3f} {m['best_standalone']:18.2f} "
              f"{m['seconds']:9.1f} {m['time_ratio']:6.3f}")
    tests = [paired(rows, v, key) for v in args.variants if v != "plain" for key in ("tau_top10", "best_standalone")]
    if tests:
        print(f"\n{'variant - plain':16s} {'measure':16s} {'n':>2s} {'mean diff':>10s} {'SE':>7s} {'p (t)':>7s} "
              f"{'p (Wilcoxon)':>12s}")
        for t in tests:
            print(f"{t['variant']:16s} {t['measure']:16s} {t['n']:2d} {t['mean_diff']:+10.3f} {t['se']:7.3f} "
                  f"{t['p_ttest']:7.3f} {t['p_wilcoxon']:12.3f}")
    payload = {"rows": rows, "means": means, "paired": tests, "table": spec.name, "search": {**SEARCH, **search},
               "variants": {k: VARIANTS[k] for k in args.variants}, "extra": extra,
               "standalone_seeds": standalone.seeds, "standalone_trained": standalone.trained, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_json(out / "shifting.json", payload)
    return payload


if __name__ == "__main__":
    main()
