"""The handlers of ``nds train``, ``search``, ``evaluate``, ``rank``, ``export``, ``list``, ``plot`` and ``summary``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..atomic_io import atomic_write_json, atomic_write_text, finite_or_null
from ..errors import ConfigError
from ..json_inputs import archs_from_json, check_predictions
from ..ranking.lookup import resolve_ground_truth
from ..ranking.tables import TABLES, resolve_table_path
from ..run_dir import DirectoryLock, claim_run_dir, refuse_to_replace
from .bench_commands import parse_pairs
from .files import input_file, output_dir, output_file, read_json, recipe_from_args, recipe_overrides

__all__ = ["cmd_train", "cmd_search", "cmd_evaluate", "cmd_rank", "cmd_export", "cmd_list", "cmd_plot", "cmd_summary"]


def cmd_train(args: argparse.Namespace) -> int:
    from ..pipeline import run_recipe
    out = output_dir(args.out)
    recipe = recipe_from_args(args)
    # One writer per folder; a finished run is kept unless --overwrite; a resume must be of the same recipe.
    with claim_run_dir(out, recipe.to_dict(), resume=args.resume, overwrite=args.overwrite) as claim:
        results = run_recipe(recipe, out, resume=claim.resume_from, progress=args.progress,
                             skip_search=args.skip_search, on_start=claim.start)
    if not results:  # a DDP rank other than 0
        return 0
    print(json.dumps(finite_or_null({k: results[k] for k in ("default", "headline", "checkpoint") if k in results})))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..stages import load_supernet
    overrides = recipe_overrides(args.set)
    if args.searcher:
        overrides["search.searcher"] = args.searcher
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
    from ..stages import search_run
    truth = resolve_ground_truth(run.recipe, run.search_space) if run.recipe.search.track_archs else None
    found = search_run(run, out, truth=truth)
    result = {k: v for k, v in found.items()}
    atomic_write_json(out / "search.json", result)
    if run.recipe.output.plots:
        from ..plots import plot_results
        plot_results({"search": result}, out)
    atomic_write_json(out / "best_arch.json", found["top"][0]["arch"])
    print(json.dumps({"best_arch": found["top"][0]["arch"], "accuracy": found["top"][0]["accuracy"],
                      "evaluations": found["evaluations"]}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..stages import load_supernet, predict
    archs = archs_from_json(read_json(args.archs, "--archs"), args.archs, "--archs")
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    output_file(args.out)
    refuse_to_replace([args.out], args.overwrite)
    run = load_supernet(args.checkpoint, recipe_overrides(args.set))
    preds = predict(run, archs, progress=args.progress)
    atomic_write_json(args.out, preds)
    print(f"wrote {len(preds)} predictions to {args.out}")
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from ..ranking import GroundTruth, match_predictions, ranking_report
    preds = read_json(args.predictions, "--predictions")
    check_predictions(preds, args.predictions)  # objects, {label: choice} archs, finite accuracies
    table_path = resolve_table_path(args.ground_truth)  # a table name (v2_26) or a path
    if args.ground_truth in TABLES and not table_path.is_file():
        raise ConfigError("--ground-truth", args.ground_truth, "this embedded table is not installed; build it with "
                          f"`nds bench build --table {args.ground_truth}` or pass a table's path")
    input_file(str(table_path), "--ground-truth", "ground-truth table (JSON) or a table name: " + ", ".join(TABLES))
    if args.out:
        output_file(args.out, example="rank.json")
        refuse_to_replace([args.out], args.overwrite)
    try:
        truth = GroundTruth.load(table_path)
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
    from ..bench.table_baselines import table_scores
    from ..ranking import arch_key
    from ..ranking.baselines import ranking_baselines
    from ..ranking.zero_cost import PROXIES
    scores, missing = table_scores(truth)
    position = {arch_key(a): i for i, a in enumerate(truth.archs())}
    index = [position[arch_key(m["arch"])] for m in matched]
    sub = {name: [values[i] for i in index] for name, values in scores.items()}
    true = [truth.accuracies()[i] for i in index]
    return ranking_baselines(true, params=sub.get("params"), flops=sub.get("flops"),
                             proxies={k: v for k, v in sub.items() if k in PROXIES}, predictions=predictions,
                             missing=missing)


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_subnet
    from ..stages import load_supernet
    found = archs_from_json(read_json(args.arch, "--arch"), args.arch, "--arch")
    if len(found) != 1:
        raise ConfigError("--arch", args.arch, f"holds {len(found)} architectures; export one: best_arch.json, "
                                               "results.json or one {label: choice} object")
    arch = found[0]
    input_file(args.checkpoint, "--checkpoint", "supernet.pt written by nds train")
    output_dir(args.out)
    refuse_to_replace([Path(args.out) / "weights.pt", Path(args.out) / "arch.json"], args.overwrite)
    run = load_supernet(args.checkpoint)
    paths = export_subnet(run, arch, Path(args.out))
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..registry import get_preset, hub_space_table_rst, list_spaces, list_strategies, strategy_table_rst
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


def cmd_plot(args: argparse.Namespace) -> int:
    from ..plot_files import draw_figures
    data = read_json(args.results, "RESULTS")
    out = output_dir(args.out) if args.out else Path(args.results).resolve().parent
    written = draw_figures(data, args.results, out)  # checked first, then all figures or none
    for path in written:
        print(path)
    if not written:
        print(f"{args.results}: nothing to plot (no history, ranking or diagnostics in it)")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ..experiment_summary import experiment_trials, format_summary, summarize_trials, summary_json
    if args.out:
        output_file(args.out, example="summary.json")
    pairs = parse_pairs(args.pairs)
    trials = experiment_trials(args.experiment, port=args.port)
    summary = summarize_trials(trials, metric=args.metric, pairs=pairs)
    if not summary["trials"]:
        raise ConfigError("EXPERIMENT", args.experiment or args.port, f"has no succeeded trial with a final "
                                                                      f"{args.metric} and a strategy and seed")
    print(format_summary(summary))
    if args.out:
        atomic_write_text(args.out, summary_json(summary) + "\n")
    return 0

