"""JSON files the commands read: size-bounded, parsed once, and checked for the shape each command needs.

A wrong-typed or truncated JSON file (a string where an architecture mapping belongs, a
``NaN`` predicted accuracy, a half-written ``compare.json``) must stop a command with one
line naming the file and the entry, never a traceback deep in a plot or a metric. These
checks run before any output is written.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_CONTAINERS", "load_json", "check_arch", "archs_from_json", "check_predictions",
           "check_plot_input", "load_json_object", "check_compare_rows", "given_twice"]

#: Largest JSON input read (a full NAS-Bench-201 ranking of 15,625 architectures is about 5 MB). Python
#: objects take up to 25 times the bytes of the JSON text, so this keeps any input well under 1 GB.
MAX_JSON_BYTES = 16_000_000
#: Most arrays and objects in a JSON input (they cost the most memory per byte: ~60 bytes for ``{}``).
#: A ranking of 15,625 architectures has about 31,000.
MAX_JSON_CONTAINERS = 1_000_000


def load_json(path: Path, field: str, what: str = "JSON file") -> Any:
    """Parse the JSON file ``path`` (at most :data:`MAX_JSON_BYTES`), or raise a one-line :class:`ConfigError`."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(field, str(path), f"is {size:,} bytes, more than the {MAX_JSON_BYTES:,} a {what} may be")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(field, str(path), f"is not a text file; pass a {what}") from None
    except OSError as exc:
        raise ConfigError(field, str(path), f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    containers = text.count("[") + text.count("{")  # an upper bound: brackets inside strings count too
    if containers > MAX_JSON_CONTAINERS:
        raise ConfigError(field, str(path), f"holds about {containers:,} JSON arrays and objects, more than the "
                                            f"{MAX_JSON_CONTAINERS:,} a {what} may have")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(field, str(path), f"not valid JSON ({exc.msg} at line {exc.lineno}); "
                                            "it may be truncated: write it again") from None
    except RecursionError:
        raise ConfigError(field, str(path), "is nested too deeply to read") from None


def load_json_object(path: Path, field: str, what: str) -> dict:
    """:func:`load_json` of a file that must hold a JSON object."""
    data = load_json(path, field, what)
    if not isinstance(data, dict):
        raise ConfigError(field, str(path), f"holds a JSON {type(data).__name__}, not the object of a {what}")
    return data


def check_arch(arch: Any, field: str) -> None:
    """An architecture is a non-empty ``{label: choice}`` object; a choice is a string, an integer or a list of them."""
    if not isinstance(arch, dict) or not arch:
        raise ConfigError(field, arch, "must be a non-empty {label: choice} object")
    for label, choice in arch.items():
        ok = (isinstance(choice, (str, int)) and not isinstance(choice, bool)) or (
            isinstance(choice, list) and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in choice))
        if not ok:
            raise ConfigError(f"{field}.{label}", choice, "a choice must be a string, an integer or a list of them")


def archs_from_json(data: Any, source: str, field: str) -> list[dict]:
    """The architectures a JSON input holds, whichever file a user has at hand, each checked.

    Accepted: one ``{label: choice}`` object (``best_arch.json``), a list of them, a
    ``results.json`` of ``nds train`` (its ``best_arch``) and a ``search.json`` of ``nds search``
    (its ``top`` architectures, best first).

    Parameters
    ----------
    data
        The loaded JSON.
    source
        The file's path, for messages.
    field
        The option that named it (``--archs``).

    Returns
    -------
    list of dict
        At least one architecture.

    Raises
    ------
    ConfigError
        When the JSON is none of these, or an architecture is malformed.
    """
    if isinstance(data, dict) and ("best_arch" in data or str(data.get("format", "")).startswith("nds-results/")):
        if not isinstance(data.get("best_arch"), dict):
            raise ConfigError(field, source, "is a results.json without best_arch (the run skipped the search); "
                                             "pass best_arch.json or a list of {label: choice} objects")
        archs = [data["best_arch"]]
    elif isinstance(data, dict) and isinstance(data.get("top"), list) and "searcher" in data:
        archs = [row.get("arch") if isinstance(row, dict) else row for row in data["top"]]
    elif isinstance(data, dict):
        archs = [data]
    elif isinstance(data, list) and data:
        archs = data
    else:
        raise ConfigError(field, source, "must hold a {label: choice} object, a non-empty list of them, a "
                                         "best_arch.json or a results.json")
    for i, arch in enumerate(archs):
        if not isinstance(arch, dict):
            raise ConfigError(f"{field}[{i}]", arch, "must be a {label: choice} object (e.g. the content of "
                                                     "best_arch.json)")
        check_arch(arch, field if len(archs) == 1 and isinstance(data, dict) else f"{field}[{i}]")
    return archs


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_predictions(preds: Any, source: str) -> None:
    """``nds rank``'s predictions: a non-empty list of ``{arch, predicted_accuracy}`` with finite accuracies.

    A NaN or infinite prediction is refused like a NaN ground truth: no rank correlation
    is defined for it, and a silently dropped one would change the ranking.
    """
    if not isinstance(preds, list) or not preds:
        raise ConfigError("--predictions", source,
                          "must be a non-empty list of {arch, predicted_accuracy} objects (nds evaluate writes one)")
    for i, p in enumerate(preds):
        if not isinstance(p, dict) or "arch" not in p:
            raise ConfigError(f"--predictions[{i}]", p, "must be an {arch, predicted_accuracy} object")
        check_arch(p["arch"], f"--predictions[{i}].arch")
        key = "predicted_accuracy" if "predicted_accuracy" in p else "accuracy"
        if not _finite_number(p.get(key)):
            raise ConfigError(f"--predictions[{i}].{key}", p.get(key),
                              "must be a finite number (a NaN or infinite prediction has no rank)")


def _need(data: Any, key: str, kind: type, source: str, where: str) -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise ConfigError("RESULTS", source, f"{where}{key} is {got}, not a {kind.__name__}; "
                                             "pass a results.json of nds train or a compare.json of nds bench compare")
    return value


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_plot_input(data: Any, source: str, base: Path) -> str:
    """What ``nds plot`` was given: ``"compare"`` or ``"results"``, with the fields the figures read checked.

    Parameters
    ----------
    data
        The loaded JSON.
    source
        Its path, for messages.
    base
        Its folder: a compare's run paths that do not exist as given are looked up there.

    Raises
    ------
    ConfigError
        When the JSON is neither kind, or a field the figures read has the wrong type.
    """
    if isinstance(data, dict) and "summary" in data and "runs" in data:
        summary = _need(data, "summary", list, source, "")
        runs = _need(data, "runs", list, source, "")
        for i, row in enumerate(summary):
            if not isinstance(row, dict) or not isinstance(row.get("strategy"), str) or not all(
                    _number_or_null(row.get(k)) for k in ("kendall_tau", "kendall_tau_std")):
                raise ConfigError("RESULTS", source, f"summary[{i}] is not a recipe row (strategy, kendall_tau, "
                                                     "kendall_tau_std)")
        noise = data.get("noise_ceiling")
        if noise is not None and not (isinstance(noise, dict) and _number_or_null(noise.get("kendall_tau"))):
            raise ConfigError("RESULTS", source, "noise_ceiling is not an object with a kendall_tau number")
        for i, row in enumerate(runs):
            results = row.get("results") if isinstance(row, dict) else None
            if isinstance(results, dict):  # the run's results inline
                _check_ranked_results(results, f"runs[{i}].results", source)
            elif isinstance(results, str):
                _check_ranked_results(_run_results(results, base), f"runs[{i}].results")
            else:
                raise ConfigError("RESULTS", source, f"runs[{i}].results is not the path of a run's results.json")
        return "compare"
    if isinstance(data, dict) and "training" in data:
        training = _need(data, "training", dict, source, "")
        history = training.get("history", [])
        if not isinstance(history, list) or not all(isinstance(r, dict) and isinstance(r.get("epoch"), int)
                                                    for r in history):
            raise ConfigError("RESULTS", source, "training.history is not a list of {epoch, ...} rows")
        for key in ("search", "diagnostics", "partition_tree", "ranking"):
            if key in data and data[key] is not None and not isinstance(data[key], dict):
                raise ConfigError("RESULTS", source, f"{key} is a {type(data[key]).__name__}, not an object")
        if isinstance(data.get("ranking"), dict):
            _check_ranked_results(data, "ranking", source)
        return "results"
    raise ConfigError("RESULTS", source, "is neither a results.json of nds train / a trial nor a "
                                         "compare.json of nds bench compare")


def _run_results(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_file() or p.is_absolute() else base / p


def _check_ranked_results(results: Any, where: str, source: Any = None) -> None:
    """A run's ranking as the scatter plots read it: strategy, seed and predictions with two numbers each."""
    if isinstance(results, Path):
        source = str(results)
        if not results.is_file():
            raise ConfigError("RESULTS", source, f"{where}: no such file; the compare's runs must still exist")
        results = load_json(results, "RESULTS", "results.json")
    ranking = results.get("ranking") if isinstance(results, dict) else None
    if not isinstance(results, dict) or not isinstance(results.get("strategy"), str):
        raise ConfigError("RESULTS", source, f"{where}: not a run's results (no strategy name)")
    preds = ranking.get("predictions") if isinstance(ranking, dict) else None
    if not isinstance(preds, list) or not all(
            isinstance(p, dict) and _number_or_null(p.get("true_accuracy")) and _number_or_null(p.get("predicted_accuracy"))
            for p in preds) or not _number_or_null(ranking.get("kendall_tau")):
        raise ConfigError("RESULTS", source, f"{where}: ranking.predictions is not a list of "
                                             "{predicted_accuracy, true_accuracy} numbers")


def check_compare_rows(rows: Any, source: str) -> list:
    """The ``runs`` of a compare.json (or the ``row`` of a bench_row.json): strategy, integer seed, results path."""
    if not isinstance(rows, list):
        raise ConfigError("RUNS", source, "holds no list of runs; it may be truncated or not written by nds bench "
                                          "compare: run the compare again")
    for i, row in enumerate(rows):
        if not (isinstance(row, dict) and isinstance(row.get("strategy"), str) and isinstance(row.get("seed"), int)
                and not isinstance(row.get("seed"), bool) and isinstance(row.get("results"), str)):
            raise ConfigError("RUNS", source, f"run {i} is not a compare row (strategy, seed, results); "
                                              "run the compare again")
    return rows


def given_twice(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, in first-seen order."""
    seen: set[str] = set()
    twice: list[str] = []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    return twice
