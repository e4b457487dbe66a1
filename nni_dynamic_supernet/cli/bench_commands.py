"""The handlers of ``nds bench``: build, info, compare, rescore, sweep, verdict and verdicts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from ..bench.compare import DEFAULT_RECIPE, compare_recipes, split_recipe_overrides
from ..bench.sweep import sweep_budgets
from ..errors import ConfigError
from ..json_inputs import given_twice
from ..ranking.tables import DEFAULT_TABLE, TABLES
from ..recipe import load_recipe
from .files import input_file, output_dir, output_file, recipe_overrides

__all__ = ["cmd_bench_build", "cmd_bench_info", "cmd_bench_compare", "cmd_bench_rescore", "cmd_bench_sweep",
           "cmd_bench_verdict", "cmd_bench_verdicts", "parse_pairs", "checked_bench_runs"]


def cmd_bench_build(args: argparse.Namespace) -> int:
    from ..bench.build import build_ground_truth
    from ..bench.info import bench_info
    output_file(args.out, example="table.json")
    # Without --archs / --seeds the build has the shipped table's size, so the defaults rebuild it.
    build_ground_truth(args.out, n_archs=args.archs, seeds=None if args.seeds is None else tuple(args.seeds),
                       sample_seed=args.sample_seed,
                       workers=args.workers, progress=False if args.quiet else None, table=args.table)
    print(bench_info(args.out))
    return 0


def cmd_bench_info(args: argparse.Namespace) -> int:
    from ..bench.info import bench_info
    if args.table is not None and args.table_option is not None:
        raise ConfigError("--table", args.table_option, "give the table once, either as TABLE or as --table")
    table = args.table or args.table_option or DEFAULT_TABLE  # the default recipe's table
    field = "--table" if args.table_option is not None else "TABLE"  # name the argument the user typed
    if table not in TABLES:
        input_file(table, field, "ground-truth table (JSON) or a table name: " + ", ".join(TABLES))
    try:
        print(bench_info(table))
    except ConfigError as exc:
        raise ConfigError(field, table, exc.fix) from None
    return 0


def parse_pairs(values: Optional[Sequence[str]]) -> Optional[list[tuple[str, str]]]:
    if values is None:
        return None
    out = []
    for value in values:
        technique, sep, baseline = value.partition(":")
        if not sep or not technique or not baseline:
            raise ConfigError("--pairs", value, "write each pair as TECHNIQUE:BASELINE, e.g. spos_calr:spos")
        out.append((technique, baseline))
    return out


def checked_bench_runs(args: argparse.Namespace) -> tuple[Path, dict]:
    """The output directory and overrides of ``bench compare`` / ``bench sweep``, every recipe checked first."""
    for option, values in (("--recipes", args.recipes), ("--seeds", args.seeds)):
        twice = given_twice([str(v) for v in values])
        if twice:  # the same run twice would be trained twice and reported as a spread of 0
            raise ConfigError(option, values, f"{', '.join(twice)} given more than once; give each once")
    out = output_dir(args.out)
    if args.config:
        input_file(args.config, "--config", "YAML recipe")
    overrides = recipe_overrides(args.set)
    common, own = split_recipe_overrides(overrides, args.recipes)
    for name in args.recipes:  # every recipe and override is checked before the first run starts
        load_recipe(args.config or DEFAULT_RECIPE, {**common, **own[name], "strategy": name})
    return out, overrides


def cmd_bench_compare(args: argparse.Namespace) -> int:
    out, overrides = checked_bench_runs(args)
    pairs = parse_pairs(args.pairs)
    compare_recipes(args.recipes, args.seeds, config=args.config, out_dir=out, overrides=overrides,
                    workers=args.workers, pairs=pairs, table=args.table, metrics=args.metrics)
    return 0


def cmd_bench_verdict(args: argparse.Namespace) -> int:
    from ..bench.verdict import run_verdicts
    for path in args.registrations:
        input_file(path, "REGISTRATION", "registration YAML such as benchmarks/verdicts/dynas_early.yaml")
    results = run_verdicts(args.registrations, runs_dir=output_dir(args.runs_dir, "--runs-dir"), workers=args.workers,
                           overwrite=args.overwrite)
    for result in results:
        print(json.dumps({k: result.get(k) for k in ("name", "status", "n_seeds", "n_registered", "diff_mean", "ci95",
                                                       "p_sign_flip", "p_ttest", "mde80")}))
    return 0


def cmd_bench_verdicts(args: argparse.Namespace) -> int:
    from ..atomic_io import atomic_write_text
    from ..bench.verdict_table import refresh_baselines, verdict_table_rst
    if args.refresh_baselines:
        refresh_baselines(args.dir)
    text = verdict_table_rst(args.dir)
    if args.out:
        atomic_write_text(output_file(args.out, example="verdict_table.rst"), text)
    else:
        print(text, end="")
    return 0


def cmd_bench_rescore(args: argparse.Namespace) -> int:
    from ..bench.rescore import rescore_runs
    rescore_runs(args.runs, args.table, out_dir=output_dir(args.out), pairs=parse_pairs(args.pairs), metrics=args.metrics)
    return 0


def cmd_bench_sweep(args: argparse.Namespace) -> int:
    out, overrides = checked_bench_runs(args)
    sweep_budgets(args.recipes, args.seeds, args.epochs, config=args.config, out_dir=out,
                  overrides=overrides, workers=args.workers, table=args.table,
                  plateau_delta=args.plateau_delta)
    return 0

