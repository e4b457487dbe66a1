"""The ``nds`` command: train, search, evaluate, rank, export, plot, bench, list.

Every user error is printed as one line (``nds: error: field=value: fix``) with exit
status 2, and leaves no partial output file behind. A command imports torch, NNI, scipy and
matplotlib only once it runs, so ``nds --help`` and a usage error answer at once.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .atomic_io import atomic_write_json
from .bench.compare import DEFAULT_RECIPE, METRIC_NAMES, compare_recipes, split_recipe_overrides
from .bench.sweep import sweep_budgets
from .components import SEARCHERS, Registry
from .errors import ConfigError, TrainingDiverged
from .output_dirs import remove_empty_new_dirs
from .quiet_logs import quiet_third_party_logs
from .ranking.tables import TABLES, table_for_dataset
from .recipe import load_recipe, parse_override

__all__ = ["main", "build_parser"]


def _overrides(pairs: Optional[Sequence[str]]) -> dict:
    return dict(parse_override(p) for p in (pairs or []))


def input_file(path: str, field: str, what: str = "file") -> Path:
    """``path`` as an existing, readable, non-empty regular file, or a one-line ConfigError naming ``field``."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(field, path, f"is a directory; pass a {what}")
    if not p.exists():
        raise ConfigError(field, path, f"file not found; pass an existing {what}")
    if not p.is_file():
        raise ConfigError(field, path, f"is not a regular file; pass a {what}")
    if not os.access(p, os.R_OK):
        raise ConfigError(field, path, "cannot be read (permission denied); fix its permissions")
    if p.stat().st_size == 0:
        raise ConfigError(field, path, f"is empty; pass a {what}")
    return p


def _writable_ancestor(p: Path, field: str, path: str) -> None:
    """The nearest existing ancestor of ``p`` must be a writable directory (so ``p`` can be created)."""
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(field, path, f"cannot be created: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(field, path, f"cannot be created: {parent} is not writable")


def output_dir(path: str, field: str = "--out") -> Path:
    """``path`` as a directory that exists or can be created (not a file), checked before any work."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(field, path, "is an existing file; name a directory (it is created if missing)")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(field, path, "is not writable; name a directory you can write to")
    else:
        _writable_ancestor(p, field, path)
    return p


def _output_file(path: str, field: str = "--out", example: str = "predictions.json") -> Path:
    """``path`` as a file that can be written (not a directory), checked before any work."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(field, path, f"is a directory; name the file to write, e.g. {Path(path) / example}")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(field, path, "is not writable; name a file you can write")
    if not p.exists():
        _writable_ancestor(p, field, path)
    return p


def _read_json(path: str, field: str) -> Any:
    p = input_file(path, field, "JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(field, path, "is not a text file; pass a JSON file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(field, path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _cmd_train(args: argparse.Namespace) -> int:
    from .pipeline import run_recipe
    overrides = _overrides(args.set)
    if args.skip_nonfinite:
        overrides["training.skip_nonfinite"] = True
    out = output_dir(args.out)
    recipe = load_recipe(args.config, overrides)
    resume = None
    last = out / "lightning" / "last.ckpt"
    if args.resume:
        if not last.is_file():
            raise ConfigError("--resume", str(out), "no lightning/last.ckpt in the output directory to resume from")
        resume = str(last)
    results = run_recipe(recipe, out, resume=resume, progress=args.progress, skip_search=args.skip_search)
    if not results:  # a DDP rank other than 0
        return 0
    print(json.dumps({k: results[k] for k in ("default", "headline", "checkpoint") if k in results}))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from .ranking.lookup import resolve_ground_truth
    from .stages import load_supernet, search_run
    overrides = _overrides(args.set)
    if args.searcher:
        overrides["search.searcher"] = args.searcher
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    out = output_dir(args.out)
    run = load_supernet(args.checkpoint, overrides)
    out.mkdir(parents=True, exist_ok=True)
    truth = resolve_ground_truth(run.recipe, run.search_space) if run.recipe.search.track_archs else None
    found = search_run(run, out, truth=truth)
    result = {k: v for k, v in found.items()}
    atomic_write_json(out / "search.json", result)
    if run.recipe.output.plots:
        from .plots import plot_results
        plot_results({"search": result}, out)
    atomic_write_json(out / "best_arch.json", found["top"][0]["arch"])
    print(json.dumps({"best_arch": found["top"][0]["arch"], "accuracy": found["top"][0]["accuracy"],
                      "evaluations": found["evaluations"]}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .stages import load_supernet, predict
    archs = _read_json(args.archs, "--archs")
    if not isinstance(archs, list) or not all(isinstance(a, dict) for a in archs):
        raise ConfigError("--archs", args.archs, "must be a JSON list of {label: choice} objects")
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    _output_file(args.out)
    run = load_supernet(args.checkpoint, _overrides(args.set))
    preds = predict(run, archs, progress=args.progress)
    atomic_write_json(args.out, preds)
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    from .ranking import GroundTruth, match_predictions, ranking_report
    preds = _read_json(args.predictions, "--predictions")
    if not isinstance(preds, list) or not preds or not all(isinstance(p, dict) and "arch" in p for p in preds):
        raise ConfigError("--predictions", args.predictions,
                          "must be a non-empty list of {arch, predicted_accuracy} objects (nds evaluate writes one)")
    input_file(args.ground_truth, "--ground-truth", "ground-truth table (JSON)")
    if args.out:
        _output_file(args.out, example="rank.json")
    try:
        truth = GroundTruth.load(args.ground_truth)
    except ConfigError as exc:  # name the option the user typed
        raise ConfigError("--ground-truth", args.ground_truth, exc.fix) from None
    rows = [{"arch": p["arch"], "accuracy": p.get("predicted_accuracy", p.get("accuracy"))} for p in preds]
    _, pred, true = match_predictions(rows, truth)
    report = ranking_report(list(pred), list(true), n_bins=args.bins)
    report["noise_ceiling"] = truth.noise_ceiling(args.bins)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_subnet
    from .stages import load_supernet
    arch = _read_json(args.arch, "--arch")
    if isinstance(arch, dict) and "best_arch" in arch:
        arch = arch["best_arch"]
    if not isinstance(arch, dict) or not arch:
        raise ConfigError("--arch", args.arch, "must hold a {label: choice} object (best_arch.json or results.json)")
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    output_dir(args.out)
    run = load_supernet(args.checkpoint)
    paths = export_subnet(run, arch, Path(args.out))
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import get_preset, hub_space_table_rst, list_spaces, list_strategies, strategy_table_rst
    if args.rst:
        print(strategy_table_rst())
        print()
        print(hub_space_table_rst())
        return 0
    print("strategies:")
    for name in list_strategies():
        print(f"  {name:18s} {get_preset(name).summary}")
    print("spaces:")
    for name in list_spaces():
        print(f"  {name}")
    return 0


def _cmd_bench_build(args: argparse.Namespace) -> int:
    from .bench.build import build_ground_truth
    from .bench.info import bench_info
    _output_file(args.out, example="table.json")
    build_ground_truth(args.out, n_archs=args.archs, seeds=tuple(args.seeds), sample_seed=args.sample_seed,
                       workers=args.workers, progress=False if args.quiet else None, table=args.table)
    print(bench_info(args.out))
    return 0


def _cmd_bench_info(args: argparse.Namespace) -> int:
    from .bench.info import bench_info
    if args.table is not None and args.table_option is not None:
        raise ConfigError("--table", args.table_option, "give the table once, either as TABLE or as --table")
    default = table_for_dataset(load_recipe(DEFAULT_RECIPE).data.name)
    table = args.table or args.table_option or (default.name if default else "v1")  # the default recipe's table
    field = "--table" if args.table_option is not None else "TABLE"  # name the argument the user typed
    if table not in TABLES:
        input_file(table, field, "ground-truth table (JSON) or a table name: " + ", ".join(TABLES))
    try:
        print(bench_info(table))
    except ConfigError as exc:
        raise ConfigError(field, table, exc.fix) from None
    return 0


def _pairs(values: Optional[Sequence[str]]) -> Optional[list[tuple[str, str]]]:
    if values is None:
        return None
    out = []
    for value in values:
        technique, sep, baseline = value.partition(":")
        if not sep or not technique or not baseline:
            raise ConfigError("--pairs", value, "write each pair as TECHNIQUE:BASELINE, e.g. spos_calr:spos")
        out.append((technique, baseline))
    return out


def _checked_bench_runs(args: argparse.Namespace) -> tuple[Path, dict]:
    """The output directory and overrides of ``bench compare`` / ``bench sweep``, every recipe checked first."""
    out = output_dir(args.out)
    if args.config:
        input_file(args.config, "--config", "YAML recipe")
    overrides = _overrides(args.set)
    common, own = split_recipe_overrides(overrides, args.recipes)
    for name in args.recipes:  # every recipe and override is checked before the first run starts
        load_recipe(args.config or DEFAULT_RECIPE, {**common, **own[name], "strategy": name})
    return out, overrides


def _cmd_bench_compare(args: argparse.Namespace) -> int:
    out, overrides = _checked_bench_runs(args)
    pairs = _pairs(args.pairs)
    compare_recipes(args.recipes, args.seeds, config=args.config, out_dir=out, overrides=overrides,
                    workers=args.workers, pairs=pairs, table=args.table, metrics=args.metrics)
    return 0


def _cmd_bench_rescore(args: argparse.Namespace) -> int:
    from .bench.rescore import rescore_runs
    rescore_runs(args.runs, args.table, out_dir=output_dir(args.out), pairs=_pairs(args.pairs), metrics=args.metrics)
    return 0


def _cmd_bench_sweep(args: argparse.Namespace) -> int:
    out, overrides = _checked_bench_runs(args)
    sweep_budgets(args.recipes, args.seeds, args.epochs, config=args.config, out_dir=out,
                  overrides=overrides, workers=args.workers, table=args.table,
                  plateau_delta=args.plateau_delta)
    return 0


def _progress_flags(p: argparse.ArgumentParser) -> None:
    # Default: bars when stderr is a terminal and this is no nnictl trial.
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="always show progress bars (default: only on a terminal, never in nnictl trials)")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plots import plot_compare, plot_prediction_scatter, plot_results
    data = _read_json(args.results, "RESULTS")
    out = output_dir(args.out) if args.out else Path(args.results).resolve().parent
    if isinstance(data, dict) and "summary" in data and "runs" in data:  # compare.json of `nds bench compare`
        written = [plot_compare(data["summary"], out / "compare_tau.png", noise=data.get("noise_ceiling"))]
        if data["runs"]:
            written.append(plot_prediction_scatter([r["results"] for r in data["runs"]], out / "compare_scatter.png"))
    elif isinstance(data, dict) and "training" in data:
        written = plot_results(data, out)
    else:
        raise ConfigError("RESULTS", args.results, "is neither a results.json of nds train / a trial nor a "
                                                   "compare.json of nds bench compare")
    for path in written:
        print(path)
    if not written:
        print(f"{args.results}: nothing to plot (no history, ranking or diagnostics in it)")
    return 0


class _Registered:
    """A registry's names as argparse choices, read only when used (help text, a given value): ``--help`` stays fast."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __iter__(self) -> Any:
        return iter(self.registry.names())

    def __contains__(self, name: object) -> bool:
        return name in self.registry


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (``nds: error: train: ...``) and exit status 2, like every other."""

    def error(self, message: str) -> None:  # type: ignore[override]
        verb = self.prog[len("nds"):].strip()
        print(f"nds: error: {verb + ': ' if verb else ''}{message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be >= {minimum}")
        return value
    parse.__name__ = "integer"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nds``."""
    parser = _Parser(prog="nds", description="Weight-sharing supernet training and ranking for NNI.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug information")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a supernet, search it and rank it against the ground truth")
    p.add_argument("--config", help="YAML recipe (default: the embedded benchmark recipe)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field (dotted key)")
    p.add_argument("--resume", action="store_true", help="resume from OUT/lightning/last.ckpt")
    _progress_flags(p)
    p.add_argument("--skip-search", action="store_true", help="train only")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="drop steps whose gradients are NaN/inf instead of stopping (training.skip_nonfinite)")
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("search", help="search a trained supernet checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--searcher", choices=_Registered(SEARCHERS), metavar="SEARCHER",
                   help="the searcher (search.searcher): %(choices)s")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(fn=_cmd_search)

    p = sub.add_parser("evaluate", help="predict the accuracy of architectures with a supernet")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--archs", required=True, help="JSON list of {label: choice} objects")
    p.add_argument("--out", required=True, help="predictions JSON")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    _progress_flags(p)
    p.set_defaults(fn=_cmd_evaluate)

    p = sub.add_parser("rank", help="rank predictions against a ground-truth table")
    p.add_argument("--predictions", required=True)
    p.add_argument("--ground-truth", required=True)
    p.add_argument("--bins", type=_count(1), default=400)
    p.add_argument("--out")
    p.set_defaults(fn=_cmd_rank)

    p = sub.add_parser("export", help="export an architecture and its inherited weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", required=True, help="best_arch.json, results.json or a {label: choice} JSON")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("plot", help="draw every figure of a results.json (or a compare.json) as PNG")
    p.add_argument("results", metavar="RESULTS.json", help="results.json of a run, or compare.json of bench compare")
    p.add_argument("--out", help="output directory (default: the JSON file's directory)")
    p.set_defaults(fn=_cmd_plot)

    p = sub.add_parser("list", help="list strategies and spaces")
    p.add_argument("--rst", action="store_true", help="print the strategy table of the README (reStructuredText)")
    p.set_defaults(fn=_cmd_list)

    bench = sub.add_parser("bench", help="the embedded ranking benchmark")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    tables = list(TABLES)
    p = bsub.add_parser("build", help="train architectures stand-alone to build a ground-truth table")
    p.add_argument("--out", required=True)
    p.add_argument("--table", choices=tables, default="v1",
                   help="whose recipe to follow: dataset, space size, stand-alone epochs (default v1)")
    p.add_argument("--archs", type=_count(1), default=160)
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0, 1])
    p.add_argument("--sample-seed", type=_count(0), default=2026)
    p.add_argument("--workers", type=_count(1), default=1)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=_cmd_bench_build)
    p = bsub.add_parser("info", help="summarise a ground-truth table: noise ceiling and capacity signal")
    p.add_argument("table", nargs="?", metavar="TABLE", help=f"a table name ({', '.join(tables)}) or a JSON path "
                                                             "(default: the embedded default recipe's, v2_26)")
    p.add_argument("--table", dest="table_option", metavar="TABLE", help="the same as TABLE")
    p.set_defaults(fn=_cmd_bench_info)
    p = bsub.add_parser("compare", help="train several recipes x seeds and rank them against the table")
    p.add_argument("--recipes", nargs="+", required=True, help="strategy names")
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0, 1, 2])
    p.add_argument("--config", default=None, help="base recipe (default: config_templates/embedded.yaml values)")
    p.add_argument("--out", default="bench_compare")
    p.add_argument("--workers", type=_count(1), default=1)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="recipe override for every run; RECIPE:KEY=VALUE for one recipe only")
    p.add_argument("--table", choices=tables, help="rank against this embedded table (sets dataset and space size)")
    p.add_argument("--pairs", nargs="+", metavar="TECHNIQUE:BASELINE",
                   help="pairs for the paired statistics (default: the per-paper pairs among --recipes)")
    p.add_argument("--metrics", nargs="+", default=["kendall_tau"], choices=list(METRIC_NAMES), metavar="METRIC",
                   help="per-run measures that get a paired table, e.g. kendall_tau spearman_top10 (GM-NAS's measure)")
    p.set_defaults(fn=_cmd_bench_compare)
    p = bsub.add_parser("rescore", help="rank the finished runs of compares again against another table, "
                                        "without training (same architectures, new ground truth)")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="--out folders of bench compare, or run folders in them")
    p.add_argument("--table", required=True, metavar="TABLE",
                   help=f"the new table: a name ({', '.join(tables)}) or a JSON path")
    p.add_argument("--out", default="bench_rescore")
    p.add_argument("--pairs", nargs="+", metavar="TECHNIQUE:BASELINE",
                   help="pairs for the paired statistics (default: the per-paper pairs among the runs)")
    p.add_argument("--metrics", nargs="+", default=["kendall_tau"], choices=list(METRIC_NAMES), metavar="METRIC",
                   help="per-run measures that get a paired table")
    p.set_defaults(fn=_cmd_bench_rescore)
    p = bsub.add_parser("sweep", help="train recipes x seeds at several budgets and find the plateau budget")
    p.add_argument("--recipes", nargs="+", required=True, help="strategy names")
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0])
    p.add_argument("--epochs", type=_count(1), nargs="+", required=True, help="budgets, e.g. 60 120 240 480")
    p.add_argument("--config", default=None, help="base recipe (default: the embedded recipe)")
    p.add_argument("--table", choices=tables, help="rank against this embedded table (sets dataset and space size)")
    p.add_argument("--out", default="bench_sweep")
    p.add_argument("--workers", type=_count(1), default=1)
    p.add_argument("--plateau-delta", type=float, default=0.02, help="tau gain below which a budget is the plateau")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(fn=_cmd_bench_sweep)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``nds``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, printed) or --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    quiet_third_party_logs(verbose=args.verbose)
    existed = {p: Path(p).exists() for p in _output_paths(args)}
    try:
        return int(args.fn(args) or 0)
    except ConfigError as exc:
        remove_empty_new_dirs(existed)
        print(f"nds: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"nds: error: {exc}", file=sys.stderr)
        return 3


def _output_paths(args: argparse.Namespace) -> list[str]:
    out = getattr(args, "out", None)
    return [out] if isinstance(out, str) else []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
