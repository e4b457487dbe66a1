"""The argument parser of ``nds``: every subcommand, its options and its handler."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..bench.compare import METRIC_NAMES
from ..components import SEARCHERS, Registry
from ..ranking.tables import TABLES
from .bench_commands import (cmd_bench_build, cmd_bench_compare, cmd_bench_info, cmd_bench_rescore, cmd_bench_sweep,
                             cmd_bench_verdict, cmd_bench_verdicts)
from .run_commands import (cmd_evaluate, cmd_export, cmd_list, cmd_plot, cmd_rank, cmd_search, cmd_summary,
                           cmd_train)

__all__ = ["build_parser"]


def _progress_flags(p: argparse.ArgumentParser) -> None:
    # Default: bars when stderr is a terminal and this is no nnictl trial.
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="always show progress bars (default: only on a terminal, never in nnictl trials)")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")


def _overwrite_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} if an earlier call wrote them")


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
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in OUT from OUT/lightning/last.ckpt (same recipe only)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run OUT holds (finished or not); its files are removed first")
    _progress_flags(p)
    p.add_argument("--skip-search", action="store_true", help="train only")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="drop steps whose gradients are NaN/inf instead of stopping (training.skip_nonfinite)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("search", help="search a trained supernet checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--searcher", choices=_Registered(SEARCHERS), metavar="SEARCHER",
                   help="the searcher (search.searcher): %(choices)s")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    _overwrite_flag(p, "OUT/search.json and OUT/best_arch.json")
    p.set_defaults(fn=cmd_search)

    p = sub.add_parser("evaluate", help="predict the accuracy of architectures with a supernet")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--archs", required=True, help="JSON list of {label: choice} objects")
    p.add_argument("--out", required=True, help="predictions JSON")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    _progress_flags(p)
    _overwrite_flag(p, "the predictions file")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("rank", help="rank predictions against a ground-truth table")
    p.add_argument("--predictions", required=True)
    p.add_argument("--ground-truth", required=True)
    p.add_argument("--bins", type=_count(1), default=400)
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the trivial rankers (parameter count, FLOPs, zero-cost proxies) of the table")
    p.add_argument("--out")
    _overwrite_flag(p, "the --out file")
    p.set_defaults(fn=cmd_rank)

    p = sub.add_parser("export", help="export an architecture and its inherited weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", required=True, help="best_arch.json, results.json or a {label: choice} JSON")
    p.add_argument("--out", required=True)
    _overwrite_flag(p, "OUT/weights.pt and OUT/arch.json")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("plot", help="draw every figure of a results.json (or a compare.json) as PNG")
    p.add_argument("results", metavar="RESULTS.json", help="results.json of a run, or compare.json of bench compare")
    p.add_argument("--out", help="output directory (default: the JSON file's directory)")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("list", help="list strategies and spaces")
    p.add_argument("--rst", action="store_true", help="print the strategy table of the README (reStructuredText)")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("summary", help="an nnictl experiment's trials as a paired comparison of recipes by seed")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT",
                   help="the experiment id (a stopped one is opened in NNI's view mode and closed again)")
    p.add_argument("--port", type=_count(1), help="the web UI port of a running experiment, instead of its id")
    p.add_argument("--metric", default="kendall_tau",
                   help="the final-metric key compared, e.g. kendall_tau, partial_tau_params, default "
                        "(default: kendall_tau)")
    p.add_argument("--pairs", nargs="+", metavar="TECHNIQUE:BASELINE",
                   help="recipe pairs (default: the per-paper pairs among the trials)")
    p.add_argument("--out", help="also write the summary as JSON to this file")
    p.set_defaults(fn=cmd_summary)

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
    p.set_defaults(fn=cmd_bench_build)
    p = bsub.add_parser("info", help="summarise a ground-truth table: noise ceiling and capacity signal")
    p.add_argument("table", nargs="?", metavar="TABLE", help=f"a table name ({', '.join(tables)}) or a JSON path "
                                                             "(default: the embedded default recipe's, v2_26)")
    p.add_argument("--table", dest="table_option", metavar="TABLE", help="the same as TABLE")
    p.set_defaults(fn=cmd_bench_info)
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
    p.set_defaults(fn=cmd_bench_compare)
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
    p.set_defaults(fn=cmd_bench_rescore)
    p = bsub.add_parser("verdict", help="run pre-registered paired tests (benchmarks/verdicts/NAME.yaml) and write "
                                        "NAME.result.json beside each; resumes where it stopped")
    p.add_argument("registrations", nargs="+", metavar="FILE", help="registration files; jobs they share run once")
    p.add_argument("--runs-dir", default="bench_verdicts",
                   help="folder of the run folders (checkpoints, results.json), reused across calls "
                        "(default: bench_verdicts)")
    p.add_argument("--workers", type=_count(1), default=1, help="worker processes, each run single-threaded (default: 1)")
    p.set_defaults(fn=cmd_bench_verdict)
    p = bsub.add_parser("verdicts", help="the table of the registered verdicts, from their result files")
    p.add_argument("--dir", default="benchmarks/verdicts",
                   help="folder with family.yaml, the registrations and their results (default: benchmarks/verdicts)")
    p.add_argument("--out", help="write the reStructuredText table to this file (default: print it)")
    p.add_argument("--refresh-baselines", action="store_true",
                   help="first recompute the trivial rankers of the tests' tables (baselines.json in --dir)")
    p.set_defaults(fn=cmd_bench_verdicts)
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
    p.set_defaults(fn=cmd_bench_sweep)
    return parser

