"""The ``nds`` command: train, search, evaluate, rank, export, plot, bench, list.

Every user error is printed as one line (``nds: error: field=value: fix``) with exit
status 2, and leaves no partial output file behind.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import ConfigError, TrainingDiverged
from .output_dirs import remove_empty_new_dirs

__all__ = ["main", "build_parser", "strategy_table_rst", "hub_space_table_rst"]


def _overrides(pairs: Optional[Sequence[str]]) -> dict:
    from .recipe import parse_override
    return dict(parse_override(p) for p in (pairs or []))


def input_file(path: str, field: str, what: str = "file") -> Path:
    """``path`` as an existing, readable, non-empty regular file, or a one-line ConfigError naming ``field``."""
    p = Path(path)
    if os.path.isdir(p):
        raise ConfigError(field, path, f"is a directory; pass a {what}")
    if not os.path.exists(p):
        raise ConfigError(field, path, f"file not found; pass an existing {what}")
    if not os.path.isfile(p):
        raise ConfigError(field, path, f"is not a regular file; pass a {what}")
    if not os.access(p, os.R_OK):
        raise ConfigError(field, path, "cannot be read (permission denied); fix its permissions")
    if p.stat().st_size == 0:
        raise ConfigError(field, path, f"is empty; pass a {what}")
    return p


def _writable_ancestor(p: Path, field: str, path: str) -> None:
    """The nearest existing ancestor of ``p`` must be a writable directory (so ``p`` can be created)."""
    parent = p.parent
    while not os.path.exists(parent) and parent != parent.parent:
        parent = parent.parent
    if not os.path.isdir(parent):
        raise ConfigError(field, path, f"cannot be created: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(field, path, f"cannot be created: {parent} is not writable")


def output_dir(path: str, field: str = "--out") -> Path:
    """``path`` as a directory that exists or is created now (not a file), checked before any work.

    Creating it up front turns every reason it cannot exist (a read-only file system, a name
    too long) into one line before the work starts; a failed command removes it again if it
    is left empty (:func:`~.output_dirs.remove_empty_new_dirs`).
    """
    p = Path(path)
    if os.path.exists(p) and not os.path.isdir(p):
        raise ConfigError(field, path, "is an existing file; name a directory (it is created if missing)")
    if os.path.isdir(p):
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(field, path, "is not writable; name a directory you can write to")
    else:
        _writable_ancestor(p, field, path)
        _make_dir(p, field, path)
    return p


def _make_dir(p: Path, field: str, path: str) -> None:
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, path, f"cannot be created ({exc.strerror or type(exc).__name__}); "
                                       "name a directory you can write to") from None


def _output_file(path: str, field: str = "--out", example: str = "predictions.json") -> Path:
    """``path`` as a file that can be written (not a directory), checked before any work."""
    p = Path(path)
    if os.path.isdir(p):
        raise ConfigError(field, path, f"is a directory; name the file to write, e.g. {Path(path) / example}")
    if os.path.exists(p) and not os.access(p, os.W_OK):
        raise ConfigError(field, path, "is not writable; name a file you can write")
    if not os.path.exists(p):
        _writable_ancestor(p, field, path)
        _make_dir(p.parent, field, path)
    return p


def _read_json(path: str, field: str) -> Any:
    from .json_inputs import load_json
    return load_json(input_file(path, field, "JSON file"), field)


def _cmd_train(args: argparse.Namespace) -> int:
    from .atomic_io import finite_or_null
    from .pipeline import run_recipe
    from .recipe import load_recipe
    from .run_dir import claim_run_dir
    overrides = _overrides(args.set)
    if args.skip_nonfinite:
        overrides["training.skip_nonfinite"] = True
    out = output_dir(args.out)
    recipe = load_recipe(args.config, overrides)
    # One writer per folder; a finished run is kept unless --overwrite; a resume must be of the same recipe.
    with claim_run_dir(out, recipe.to_dict(), resume=args.resume, overwrite=args.overwrite) as claim:
        results = run_recipe(recipe, out, resume=claim.resume_from, progress=args.progress,
                             skip_search=args.skip_search, on_start=claim.start)
    if not results:  # a DDP rank other than 0
        return 0
    print(json.dumps(finite_or_null({k: results[k] for k in ("default", "headline", "checkpoint") if k in results})))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from .pipeline import load_supernet
    overrides = _overrides(args.set)
    if args.searcher:
        overrides["search.searcher"] = args.searcher
    from .run_dir import DirectoryLock, refuse_to_replace
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    out = output_dir(args.out)
    refuse_to_replace([out / "search.json", out / "best_arch.json"], args.overwrite)
    run = load_supernet(args.checkpoint, overrides)
    lock = DirectoryLock(out, command="nds search").acquire()  # not while another nds writes there
    try:
        return _search_into(run, out)
    finally:
        lock.release()


def _search_into(run: Any, out: Path) -> int:
    from .atomic_io import atomic_write_json
    from .pipeline import resolve_ground_truth, search_run
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
    from .atomic_io import atomic_write_json
    from .pipeline import load_supernet, predict
    from .json_inputs import check_arch
    archs = _read_json(args.archs, "--archs")
    if not isinstance(archs, list) or not all(isinstance(a, dict) for a in archs):
        raise ConfigError("--archs", args.archs, "must be a JSON list of {label: choice} objects")
    for i, arch in enumerate(archs):
        check_arch(arch, f"--archs[{i}]")
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    _output_file(args.out)
    from .run_dir import refuse_to_replace
    refuse_to_replace([args.out], args.overwrite)
    run = load_supernet(args.checkpoint, _overrides(args.set))
    preds = predict(run, archs, progress=args.progress)
    atomic_write_json(args.out, preds)
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    from .atomic_io import atomic_write_json
    from .ranking import GroundTruth, match_predictions, ranking_report
    from .json_inputs import check_predictions
    preds = _read_json(args.predictions, "--predictions")
    check_predictions(preds, args.predictions)  # objects, {label: choice} archs, finite accuracies
    input_file(args.ground_truth, "--ground-truth", "ground-truth table (JSON)")
    if args.out:
        _output_file(args.out, example="rank.json")
        from .run_dir import refuse_to_replace
        refuse_to_replace([args.out], args.overwrite)
    try:
        truth = GroundTruth.load(args.ground_truth)
    except ConfigError as exc:  # name the option the user typed
        raise ConfigError("--ground-truth", args.ground_truth, exc.fix) from None
    rows = [{"arch": p["arch"], "accuracy": p.get("predicted_accuracy", p.get("accuracy"))} for p in preds]
    matched, pred, true = match_predictions(rows, truth)
    report = ranking_report(list(pred), list(true), n_bins=args.bins)
    if not args.no_baselines:
        report["baselines"] = _rank_baselines(truth, matched, list(pred))
        report["kendall_tau_partial_params"] = report["baselines"].get("complexity_controlled", {}).get(
            "partial_kendall_tau_given_params")
    report["noise_ceiling"] = truth.noise_ceiling(args.bins)
    if args.out:
        atomic_write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def _rank_baselines(truth: Any, matched: list, predictions: list) -> dict:
    """The table's trivial rankers on the predicted architectures, and the predictions' partial tau given size."""
    from .bench.table_baselines import table_scores
    from .ranking import arch_key
    from .ranking.baselines import ranking_baselines
    from .ranking.zero_cost import PROXIES
    scores, missing = table_scores(truth)
    position = {arch_key(a): i for i, a in enumerate(truth.archs())}
    index = [position[arch_key(m["arch"])] for m in matched]
    sub = {name: [values[i] for i in index] for name, values in scores.items()}
    true = [truth.accuracies()[i] for i in index]
    return ranking_baselines(true, params=sub.get("params"), flops=sub.get("flops"),
                             proxies={k: v for k, v in sub.items() if k in PROXIES}, predictions=predictions,
                             missing=missing)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_subnet
    from .pipeline import load_supernet
    arch = _read_json(args.arch, "--arch")
    if isinstance(arch, dict) and "best_arch" in arch:
        arch = arch["best_arch"]
    if not isinstance(arch, dict) or not arch:
        raise ConfigError("--arch", args.arch, "must hold a {label: choice} object (best_arch.json or results.json)")
    from .json_inputs import check_arch
    check_arch(arch, "--arch")
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    output_dir(args.out)
    from .run_dir import refuse_to_replace
    refuse_to_replace([Path(args.out) / "weights.pt", Path(args.out) / "arch.json"], args.overwrite)
    run = load_supernet(args.checkpoint)
    paths = export_subnet(run, arch, Path(args.out))
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _short_citation(paper: str) -> str:
    # "Guo et al., Single Path One-Shot NAS ..., ECCV 2020" -> "Guo et al., ECCV 2020"
    parts = [p.strip() for p in paper.split(",")]
    return f"{parts[0]}, {parts[-1]}" if len(parts) > 2 else paper


def _rst_table(header: tuple, rows: list) -> str:
    """A reStructuredText simple table whose columns fit their widest cell."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(header), rule, *map(line, rows), rule])


def strategy_table_rst() -> str:
    """The README's strategy table (name, one-line purpose, paper), generated from the registry."""
    from .registry import get_preset, list_strategies
    rows = [(f"``{n}``", get_preset(n).summary, _short_citation(get_preset(n).paper)) for n in list_strategies()]
    return _rst_table(("strategy", "purpose", "paper"), rows)


def hub_space_table_rst() -> str:
    """The README's NNI hub-space table, generated from the list the hub-space tests run."""
    from .registry import list_strategies
    from .spaces.nni_hub import hub_space_rows
    return _rst_table(("NNI hub space", "tested with", "searchable decisions", "strategies"),
                      hub_space_rows(len(list_strategies())))


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import get_preset, list_spaces, list_strategies
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
    from .bench.build import bench_info, build_ground_truth
    _output_file(args.out, example="table.json")
    build_ground_truth(args.out, n_archs=args.archs, seeds=tuple(args.seeds), sample_seed=args.sample_seed,
                       workers=args.workers, progress=False if args.quiet else None, table=args.table)
    print(bench_info(args.out))
    return 0


def _cmd_bench_info(args: argparse.Namespace) -> int:
    from .bench.build import bench_info
    from .bench.compare import DEFAULT_RECIPE
    from .bench.tables import TABLES, table_for_dataset
    from .recipe import load_recipe
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
    from .bench.compare import DEFAULT_RECIPE, split_recipe_overrides
    from .recipe import load_recipe
    from .json_inputs import given_twice
    for option, values in (("--recipes", args.recipes), ("--seeds", args.seeds)):
        twice = given_twice([str(v) for v in values])
        if twice:  # the same run twice would be trained twice and reported as a spread of 0
            raise ConfigError(option, values, f"{', '.join(twice)} given more than once; give each once")
    out = output_dir(args.out)
    if args.config:
        input_file(args.config, "--config", "YAML recipe")
    overrides = _overrides(args.set)
    common, own = split_recipe_overrides(overrides, args.recipes)
    for name in args.recipes:  # every recipe and override is checked before the first run starts
        load_recipe(args.config or DEFAULT_RECIPE, {**common, **own[name], "strategy": name})
    return out, overrides


def _cmd_bench_compare(args: argparse.Namespace) -> int:
    from .bench.compare import compare_recipes
    out, overrides = _checked_bench_runs(args)
    pairs = _pairs(args.pairs)
    compare_recipes(args.recipes, args.seeds, config=args.config, out_dir=out, overrides=overrides,
                    workers=args.workers, pairs=pairs, table=args.table, metrics=args.metrics)
    return 0


def _cmd_bench_verdict(args: argparse.Namespace) -> int:
    from .bench.verdict import run_verdicts
    for path in args.registrations:
        input_file(path, "REGISTRATION", "registration YAML such as benchmarks/verdicts/dynas_early.yaml")
    results = run_verdicts(args.registrations, runs_dir=output_dir(args.runs_dir, "--runs-dir"), workers=args.workers)
    for result in results:
        print(json.dumps({k: result.get(k) for k in ("name", "status", "n_seeds", "n_registered", "diff_mean", "ci95",
                                                       "p_sign_flip", "p_ttest", "mde80")}))
    return 0


def _cmd_bench_verdicts(args: argparse.Namespace) -> int:
    from .atomic_io import atomic_write_text
    from .bench.verdict_table import refresh_baselines, verdict_table_rst
    if args.refresh_baselines:
        refresh_baselines(args.dir)
    text = verdict_table_rst(args.dir)
    if args.out:
        atomic_write_text(_output_file(args.out, example="verdict_table.rst"), text)
    else:
        print(text, end="")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .atomic_io import atomic_write_text
    from .experiment_summary import experiment_trials, format_summary, summarize_trials, summary_json
    if args.out:
        _output_file(args.out, example="summary.json")
    pairs = _pairs(args.pairs)
    trials = experiment_trials(args.experiment, port=args.port)
    summary = summarize_trials(trials, metric=args.metric, pairs=pairs)
    if not summary["trials"]:
        raise ConfigError("EXPERIMENT", args.experiment or args.port, f"has no succeeded trial with a final "
                                                                      f"{args.metric} and a strategy and seed")
    print(format_summary(summary))
    if args.out:
        atomic_write_text(args.out, summary_json(summary) + "\n")
    return 0


def _cmd_bench_rescore(args: argparse.Namespace) -> int:
    from .bench.rescore import rescore_runs
    rescore_runs(args.runs, args.table, out_dir=output_dir(args.out), pairs=_pairs(args.pairs), metrics=args.metrics)
    return 0


def _cmd_bench_sweep(args: argparse.Namespace) -> int:
    from .bench.sweep import sweep_budgets
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


def _overwrite_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} if an earlier call wrote them")


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plot_files import draw_figures
    data = _read_json(args.results, "RESULTS")
    out = output_dir(args.out) if args.out else Path(args.results).resolve().parent
    written = draw_figures(data, args.results, out)  # checked first, then all figures or none
    for path in written:
        print(path)
    if not written:
        print(f"{args.results}: nothing to plot (no history, ranking or diagnostics in it)")
    return 0


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
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("search", help="search a trained supernet checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--searcher", choices=["evolution", "random", "exhaustive", "shifted_evolution", "nsga2"])
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    _overwrite_flag(p, "OUT/search.json and OUT/best_arch.json")
    p.set_defaults(fn=_cmd_search)

    p = sub.add_parser("evaluate", help="predict the accuracy of architectures with a supernet")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--archs", required=True, help="JSON list of {label: choice} objects")
    p.add_argument("--out", required=True, help="predictions JSON")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    _progress_flags(p)
    _overwrite_flag(p, "the predictions file")
    p.set_defaults(fn=_cmd_evaluate)

    p = sub.add_parser("rank", help="rank predictions against a ground-truth table")
    p.add_argument("--predictions", required=True)
    p.add_argument("--ground-truth", required=True)
    p.add_argument("--bins", type=_count(1), default=400)
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the trivial rankers (parameter count, FLOPs, zero-cost proxies) of the table")
    p.add_argument("--out")
    _overwrite_flag(p, "the --out file")
    p.set_defaults(fn=_cmd_rank)

    p = sub.add_parser("export", help="export an architecture and its inherited weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", required=True, help="best_arch.json, results.json or a {label: choice} JSON")
    p.add_argument("--out", required=True)
    _overwrite_flag(p, "OUT/weights.pt and OUT/arch.json")
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("plot", help="draw every figure of a results.json (or a compare.json) as PNG")
    p.add_argument("results", metavar="RESULTS.json", help="results.json of a run, or compare.json of bench compare")
    p.add_argument("--out", help="output directory (default: the JSON file's directory)")
    p.set_defaults(fn=_cmd_plot)

    p = sub.add_parser("list", help="list strategies and spaces")
    p.add_argument("--rst", action="store_true", help="print the strategy table of the README (reStructuredText)")
    p.set_defaults(fn=_cmd_list)

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
    p.set_defaults(fn=_cmd_summary)

    bench = sub.add_parser("bench", help="the embedded ranking benchmark")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    from .bench.compare import METRIC_NAMES
    from .bench.tables import TABLES
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
    p = bsub.add_parser("verdict", help="run pre-registered paired tests (benchmarks/verdicts/NAME.yaml) and write "
                                        "NAME.result.json beside each; resumes where it stopped")
    p.add_argument("registrations", nargs="+", metavar="FILE", help="registration files; jobs they share run once")
    p.add_argument("--runs-dir", default="bench_verdicts",
                   help="folder of the run folders (checkpoints, results.json), reused across calls "
                        "(default: bench_verdicts)")
    p.add_argument("--workers", type=_count(1), default=1, help="worker processes, each run single-threaded (default: 1)")
    p.set_defaults(fn=_cmd_bench_verdict)
    p = bsub.add_parser("verdicts", help="the table of the registered verdicts, from their result files")
    p.add_argument("--dir", default="benchmarks/verdicts",
                   help="folder with family.yaml, the registrations and their results (default: benchmarks/verdicts)")
    p.add_argument("--out", help="write the reStructuredText table to this file (default: print it)")
    p.add_argument("--refresh-baselines", action="store_true",
                   help="first recompute the trivial rankers of the tests' tables into DIR/baselines.json")
    p.set_defaults(fn=_cmd_bench_verdicts)
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
    from .quiet_logs import quiet_third_party_logs
    quiet_third_party_logs(verbose=args.verbose)
    existed = {p: False for p in _new_output_dirs(args)}  # deepest first: removed in that order on failure
    from .signals import Interrupted, handle_signals
    with handle_signals():  # SIGTERM / SIGINT end the command with 128 + signal, files whole
        try:
            return int(args.fn(args) or 0)
        except ConfigError as exc:
            remove_empty_new_dirs(existed)
            print(f"nds: error: {exc}", file=sys.stderr)
            return 2
        except TrainingDiverged as exc:
            print(f"nds: error: {exc}", file=sys.stderr)
            return 3
        except Interrupted as exc:
            remove_empty_new_dirs(existed)
            print(f"nds: stopped by {exc.name} (exit status {exc.exit_status}); {_what_is_kept(args)}", file=sys.stderr)
            return exc.exit_status


def _what_is_kept(args: argparse.Namespace) -> str:
    """The second half of the line a stopped command prints: what survives and how to go on."""
    if args.fn is _cmd_train:
        last = Path(args.out) / "lightning" / "last.ckpt"
        if last.is_file():
            return f"the last checkpoint {last} is whole: continue with the same command and --resume"
        return "no checkpoint was written yet: start the run again"
    return "every file written so far is whole; nothing was half-written"


def _new_output_dirs(args: argparse.Namespace) -> list[str]:
    """The output folders (and their missing parents) this command may create, deepest first."""
    from .output_dirs import missing_dirs
    out = getattr(args, "out", None)
    if not isinstance(out, str):
        return []
    return missing_dirs(Path(out).parent if args.fn in (_cmd_evaluate, _cmd_rank, _cmd_bench_build) else Path(out))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
