"""The argument parser of ``nds``: every subcommand, its options and its handler."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import __version__

from ..bench.compare import METRIC_NAMES
from ..components import SEARCHERS, Registry
from ..ranking.tables import DEFAULT_TABLE, TABLES
from .bench_commands import (cmd_bench_build, cmd_bench_compare, cmd_bench_info, cmd_bench_rescore, cmd_bench_sweep,
                             cmd_bench_verdict, cmd_bench_verdicts)
from .config_commands import cmd_config_show, cmd_templates_copy
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
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}, written by an earlier call")


def _recipe_options(p: argparse.ArgumentParser) -> None:
    """The options that choose a recipe, shared by ``nds train`` and ``nds config show``."""
    p.add_argument("--config", metavar="YAML",
                   help="YAML recipe, e.g. config_templates/spos_calr.yaml (default: the packaged embedded "
                        "benchmark recipe)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe field by its dotted key, e.g. training.lr=0.1; repeat for more "
                        "(every key: nds config show)")
    p.add_argument("--strategy", metavar="NAME", help="the strategy preset, the same as --set strategy=NAME "
                                                      "(names: nds list)")
    p.add_argument("--smoke", action="store_true",
                   help="the fast profile that checks an install: " + ", ".join(
                       f"{k}={v}" for k, v in _smoke_profile().items()) + " (other fields as the recipe; --set wins)")


def _smoke_profile() -> dict:
    from ..recipe import SMOKE_PROFILE  # the recipe module is light: no torch, no NNI
    return SMOKE_PROFILE


class _Registered:
    """A registry's names as argparse choices, read only when used (help text, a given value): ``--help`` stays fast."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __iter__(self) -> Any:
        return iter(self.registry.names())

    def __contains__(self, name: object) -> bool:
        return name in self.registry


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help with every option's default shown, as ``(default: ...)`` after its help.

    Unlike ``argparse.ArgumentDefaultsHelpFormatter`` it says nothing for an option without a
    default (``None``) or a flag that is off, and nothing twice where the help already speaks
    of the default; a list default is written as it is typed (``0 1``, not ``[0, 1]``).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or action.required or action.nargs == 0 or default in (None, argparse.SUPPRESS):
            return text  # a flag (nargs 0) is off unless given: nothing to say
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (``nds: error: train: ...``) and exit status 2, like every other."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)  # sub-command parsers are made by this class too
        super().__init__(*args, **kwargs)

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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version of nni_dynamic_supernet and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug information")
    sub = parser.add_subparsers(dest="command", required=True)
    tables = list(TABLES)
    default_table = DEFAULT_TABLE  # the default recipe's table; every command that picks a table picks it

    p = sub.add_parser("train", help="train a supernet, search it and rank it against the ground truth",
                       description="Train a supernet, search it and rank it; the resolved recipe is written to "
                                   "OUT/recipe.yaml when training starts.")
    _recipe_options(p)
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in OUT from OUT/lightning/last.ckpt (same recipe only)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run OUT holds (finished or not); its files are removed first")
    _progress_flags(p)
    p.add_argument("--skip-search", action="store_true", help="train and rank only; no search after training")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="drop steps whose gradients are NaN/inf instead of stopping (training.skip_nonfinite)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("config", help="the resolved recipe: nds config show")
    csub = p.add_subparsers(dest="config_command", required=True)
    p = csub.add_parser("show", help="print the resolved recipe as YAML: every field a run would use",
                        description="Print the recipe that nds train with the same options would run, as YAML: "
                                    "every field, after the strategy preset, the template and the overrides. "
                                    "nds train --config on the output runs the same recipe.")
    _recipe_options(p)
    p.set_defaults(fn=cmd_config_show)

    p = sub.add_parser("search", help="search a trained supernet checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="supernet.pt written by nds train")
    p.add_argument("--out", required=True, help="output directory for search.json and best_arch.json")
    p.add_argument("--searcher", choices=_Registered(SEARCHERS), metavar="SEARCHER",
                   help="the searcher (search.searcher): %(choices)s (default: the checkpoint recipe's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a search, ranking or data field of the checkpoint's recipe, e.g. "
                        "search.max_evaluations=50")
    _overwrite_flag(p, "OUT/search.json and OUT/best_arch.json")
    p.set_defaults(fn=cmd_search)

    p = sub.add_parser("evaluate", help="predict the accuracy of architectures with a supernet")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="supernet.pt written by nds train")
    p.add_argument("--archs", required=True, metavar="JSON",
                   help="the architectures: a {label: choice} object, a list of them, a best_arch.json, a "
                        "results.json (its best_arch) or a search.json (its top architectures)")
    p.add_argument("--out", required=True, metavar="PREDICTIONS.json", help="the predictions file to write")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a search, ranking or data field of the checkpoint's recipe, e.g. "
                        "search.bn_batches=8")
    _progress_flags(p)
    _overwrite_flag(p, "the predictions file")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("rank", help="rank predictions against a ground-truth table")
    p.add_argument("--predictions", required=True, metavar="JSON", help="predictions written by nds evaluate")
    p.add_argument("--ground-truth", required=True, metavar="TABLE",
                   help=f"a table name ({', '.join(tables)}) or the path of a ground-truth JSON table")
    p.add_argument("--bins", type=_count(1), default=400,
                   help="accuracy bins of the complexity-bias measures (CB, rho_CC) and the noise ceiling")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the trivial rankers (parameter count, FLOPs, zero-cost proxies) of the table")
    p.add_argument("--out", metavar="JSON", help="also write the report to this file (default: print it only)")
    _overwrite_flag(p, "the --out file")
    p.set_defaults(fn=cmd_rank)

    p = sub.add_parser("export", help="export an architecture and its inherited weights")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="supernet.pt written by nds train")
    p.add_argument("--arch", required=True, metavar="JSON",
                   help="the architecture: best_arch.json, results.json (its best_arch) or a {label: choice} object")
    p.add_argument("--out", required=True, help="output directory for weights.pt and arch.json")
    _overwrite_flag(p, "OUT/weights.pt and OUT/arch.json")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("plot", help="draw every figure of a results.json (or a compare.json) as PNG")
    p.add_argument("results", metavar="RESULTS.json", help="results.json of a run, or compare.json of bench compare")
    p.add_argument("--out", help="output directory (default: the JSON file's directory)")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("list", help="list strategies and spaces")
    p.add_argument("--rst", action="store_true", help="print the strategy table of the README (reStructuredText)")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("templates", help="the nnictl examples and their recipe templates: nds templates copy")
    tsub = p.add_subparsers(dest="templates_command", required=True)
    p = tsub.add_parser("copy", help="copy examples/*.yml and config_templates/*.yaml into a folder",
                        description="Copy the nnictl examples and the recipes they run into DIR, laid out as in a "
                                    "checkout: then cd DIR && nnictl create --config examples/spos_calr.yml.")
    p.add_argument("dir", metavar="DIR", help="the folder to copy into (created if missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files of the same name in DIR (without it an existing file stops the copy)")
    p.set_defaults(fn=cmd_templates_copy)

    p = sub.add_parser("summary", help="an nnictl experiment's trials as a paired comparison of recipes by seed")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT",
                   help="the experiment id (a stopped one is opened in NNI's view mode and closed again)")
    p.add_argument("--port", type=_count(1), help="the web UI port of a running experiment, instead of its id")
    p.add_argument("--metric", default="kendall_tau",
                   help="the final-metric key compared, e.g. kendall_tau, partial_tau_params, default")
    p.add_argument("--pairs", nargs="+", metavar="TECHNIQUE:BASELINE",
                   help="recipe pairs (default: the per-paper pairs among the trials)")
    p.add_argument("--out", help="also write the summary as JSON to this file")
    p.set_defaults(fn=cmd_summary)

    bench = sub.add_parser("bench", help="the embedded ranking benchmark")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    _bench_parsers(bsub, tables, default_table)
    return parser


def _bench_parsers(bsub: Any, tables: list, default_table: str) -> None:
    """The sub-commands of ``nds bench``."""
    p = bsub.add_parser("build", help="train architectures stand-alone to build a ground-truth table")
    p.add_argument("--out", required=True, metavar="TABLE.json", help="the table to write (grown if it exists)")
    p.add_argument("--table", choices=tables, default=default_table,
                   help="whose protocol to follow: dataset, space size, stand-alone epochs")
    p.add_argument("--archs", type=_count(1), metavar="N",
                   help="architectures to sample (default: as many as the shipped --table holds: 150, v1 160)")
    p.add_argument("--seeds", type=_count(0), nargs="+", metavar="SEED",
                   help="training seeds, one stand-alone run per architecture and seed (default: the shipped "
                        "--table's: 0 1 2 3 for v2_26, 0 1 for v1 and v2)")
    p.add_argument("--sample-seed", type=_count(0), default=2026, help="seed of the architecture sample")
    p.add_argument("--workers", type=_count(1), default=1, help="worker processes, each single-threaded")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_bench_build)
    p = bsub.add_parser("info", help="summarise a ground-truth table: noise ceiling and capacity signal")
    p.add_argument("table", nargs="?", metavar="TABLE", help=f"a table name ({', '.join(tables)}) or a JSON path "
                                                             f"(default: {default_table}, the default recipe's)")
    p.add_argument("--table", dest="table_option", metavar="TABLE", help="the same as TABLE")
    p.set_defaults(fn=cmd_bench_info)
    p = bsub.add_parser("compare", help="train several recipes x seeds and rank them against the table")
    p.add_argument("--recipes", nargs="+", required=True, metavar="STRATEGY", help="strategy names (nds list)")
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0, 1, 2], metavar="SEED", help="seeds of each recipe")
    p.add_argument("--config", default=None, metavar="YAML",
                   help="base recipe (default: the embedded recipe, config_templates/embedded.yaml)")
    p.add_argument("--out", default="bench_compare", help="output directory of the runs and compare.json")
    p.add_argument("--workers", type=_count(1), default=1, help="runs in parallel, each single-threaded")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="recipe override for every run; RECIPE:KEY=VALUE for one recipe only")
    p.add_argument("--table", choices=tables,
                   help=f"rank against this embedded table, which sets the dataset and space size "
                        f"(default: the base recipe's table, {default_table} for the embedded recipe)")
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
    p.add_argument("--out", default="bench_rescore", help="output directory of rescore.json")
    p.add_argument("--pairs", nargs="+", metavar="TECHNIQUE:BASELINE",
                   help="pairs for the paired statistics (default: the per-paper pairs among the runs)")
    p.add_argument("--metrics", nargs="+", default=["kendall_tau"], choices=list(METRIC_NAMES), metavar="METRIC",
                   help="per-run measures that get a paired table")
    p.set_defaults(fn=cmd_bench_rescore)
    p = bsub.add_parser("verdict", help="run pre-registered paired tests (benchmarks/verdicts/NAME.yaml) and write "
                                        "NAME.result.json beside each; resumes where it stopped")
    p.add_argument("registrations", nargs="+", metavar="FILE", help="registration files; jobs they share run once")
    p.add_argument("--runs-dir", default="bench_verdicts",
                   help="folder of the run folders (checkpoints, results.json), reused across calls")
    p.add_argument("--workers", type=_count(1), default=1, help="worker processes, each run single-threaded")
    p.add_argument("--overwrite", action="store_true",
                   help="discard finished runs that no job of a registration matches any more (by default they "
                        "stop the call)")
    p.set_defaults(fn=cmd_bench_verdict)
    p = bsub.add_parser("verdicts", help="the table of the registered verdicts, from their result files")
    p.add_argument("--dir", default="benchmarks/verdicts",
                   help="folder with family.yaml, the registrations and their results")
    p.add_argument("--out", help="write the reStructuredText table to this file (default: print it)")
    p.add_argument("--refresh-baselines", action="store_true",
                   help="first recompute the trivial rankers of the tests' tables (baselines.json in --dir)")
    p.set_defaults(fn=cmd_bench_verdicts)
    p = bsub.add_parser("sweep", help="train recipes x seeds at several budgets and find the plateau budget")
    p.add_argument("--recipes", nargs="+", required=True, metavar="STRATEGY", help="strategy names (nds list)")
    p.add_argument("--seeds", type=_count(0), nargs="+", default=[0], metavar="SEED", help="seeds of each recipe")
    p.add_argument("--epochs", type=_count(1), nargs="+", required=True, metavar="EPOCHS",
                   help="budgets, e.g. 60 120 240 480")
    p.add_argument("--config", default=None, metavar="YAML", help="base recipe (default: the embedded recipe)")
    p.add_argument("--table", choices=tables,
                   help=f"rank against this embedded table, which sets the dataset and space size "
                        f"(default: the base recipe's table, {default_table} for the embedded recipe)")
    p.add_argument("--out", default="bench_sweep", help="output directory of the runs and sweep.json")
    p.add_argument("--workers", type=_count(1), default=1, help="runs in parallel, each single-threaded")
    p.add_argument("--plateau-delta", type=float, default=0.02, help="tau gain below which a budget is the plateau")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="recipe override for every run; RECIPE:KEY=VALUE for one recipe only")
    p.set_defaults(fn=cmd_bench_sweep)
