"""Build the embedded ground-truth table: many archs trained stand-alone, resumably and in parallel.

:func:`build_ground_truth` draws distinct NAS-Bench-201 architectures from a recorded seed
(:func:`sample_architectures`), trains each with every training seed using
:func:`~nni_dynamic_supernet.bench.standalone.train_standalone` and writes a
:class:`~nni_dynamic_supernet.ranking.ground_truth.GroundTruth` table (``nds-ground-truth/1``).
:func:`~.info.bench_info` summarizes a table, including its noise ceiling.

Resuming
--------
A build takes minutes to hours, so every finished (arch, seed) job is appended at once, as one
JSON line, to the sidecar ``<out_path>.partial.jsonl`` (flushed and fsynced, so a crash loses at
most the job in flight). Its first line is a header holding the training protocol, the space
arguments and the dataset checksums; a restart with different ones is refused, because mixing
their results would corrupt the table. On restart, finished jobs are skipped and a truncated
last line (a crash mid-write) is dropped. When every job is done, the table is written
atomically and the sidecar removed. Per-seed results already in an existing table at
``out_path`` made with the same protocol are reused too, so a table can be grown (more archs:
sampling is prefix-stable; more seeds) without retraining what it holds.

Reproducibility
---------------
Every job trains single-threaded, in the main process (``workers=1``) or in a ``spawn``
worker, so the table does not depend on the number of workers. It does depend on the exact
dataset (its checksums are recorded) and, in the last bits, on the torch build (its version
is recorded).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from ..arch import arch_key
from ..errors import ConfigError
from ..progress import progress_bar
from ..ranking.ground_truth import GroundTruth
from ..ranking.tables import DEFAULT_TABLE, get_table
from .existing_outputs import table_growth
from .info import bench_info, capacity_signal, partial_path
from .standalone import DEFAULT_SPACE_KWARGS, protocol, single_thread, train_standalone
from .worker_pool import worker_pool

__all__ = ["NB201_LABELS", "NB201_OPS", "SAMPLING_METHOD", "sample_architectures", "build_ground_truth",
           "bench_info", "capacity_signal", "partial_path", "run_jobs"]

# Kept here (equal to spaces.nas_bench_201's constants) so that sampling needs no NNI import.
NB201_LABELS: tuple[str, ...] = ("cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3")
"""The six edge labels of NAS-Bench-201, in NNI's order."""
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
"""The five candidate ops of every edge, in NNI's order."""

SAMPLING_METHOD: str = (
    "numpy.random.RandomState(sample_seed).choice(5**6, n_archs, replace=False); index i -> "
    "base-5 digits, first label most significant, over labels cell/0_1, cell/0_2, cell/1_2, "
    "cell/0_3, cell/1_3, cell/2_3; digit -> op none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3"
)
"""How :func:`sample_architectures` draws archs, as recorded in the table's recipe."""

_PARTIAL_FORMAT = "nds-bench-partial/1"
_NUM_ARCHS = len(NB201_OPS) ** len(NB201_LABELS)

# Set by _init_worker in each worker process: the dataset, loaded once per process.
_WORKER_DATA: Optional[dict] = None


# --------------------------------------------------------------------------------------- sampling
def sample_architectures(n: int, seed: int) -> list[dict[str, str]]:
    """Draw ``n`` distinct NAS-Bench-201 architectures uniformly at random.

    Used to choose which archs a ground-truth table holds. The draw is a function of
    ``(n, seed)`` only (see :data:`SAMPLING_METHOD`) and is prefix-stable: the first ``m``
    archs of ``sample_architectures(n, seed)`` are ``sample_architectures(m, seed)``, so a
    table can be grown without changing the archs it already has.

    Parameters
    ----------
    n
        Number of archs, ``1 <= n <= 15625``.
    seed
        Seed of the ``numpy.random.RandomState`` that draws them; record it.

    Returns
    -------
    list of dict
        ``{label: op}`` dicts in draw order.

    Raises
    ------
    ConfigError
        If ``n`` is out of range or ``seed`` is not a valid NumPy seed.

    Examples
    --------
    >>> archs = sample_architectures(3, seed=0)
    >>> len(archs), sorted(archs[0]) == sorted(NB201_LABELS)
    (3, True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= _NUM_ARCHS:
        raise ConfigError("bench.n_archs", n, f"use an integer from 1 to {_NUM_ARCHS} (the size of the space)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ConfigError("bench.sample_seed", seed, "use an integer from 0 to 2**32 - 1")
    # choice(replace=False) is a permutation prefix, hence distinct, uniform and prefix-stable.
    indices = np.random.RandomState(int(seed)).choice(_NUM_ARCHS, int(n), replace=False)
    archs = []
    for index in indices:
        digits = np.base_repr(int(index), base=len(NB201_OPS)).rjust(len(NB201_LABELS), "0")
        archs.append({label: NB201_OPS[int(d)] for label, d in zip(NB201_LABELS, digits)})
    return archs


# ------------------------------------------------------------------------------------ the jobs
def _init_worker(table: str = DEFAULT_TABLE) -> None:
    """Initializer of every worker process: one thread, quiet NNI, the table's dataset loaded once."""
    global _WORKER_DATA
    # One thread per worker: reproducible regardless of worker count, and no oversubscription.
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)

    _WORKER_DATA = get_table(table).loader()()


def _run_job(arch: dict[str, str], seed: int, hparams: dict[str, Any],
             space_kwargs: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Train one (arch, seed) job in a worker; returns the sidecar record."""
    with single_thread():
        result = train_standalone(arch, seed, data=_WORKER_DATA, space_kwargs=space_kwargs or DEFAULT_SPACE_KWARGS,
                                  **hparams)
    return {"arch": arch, "seed": seed, **result}


def run_jobs(jobs: Sequence[tuple[dict[str, str], int]], table: str, workers: int,
             on_result: Callable[[dict[str, Any]], None], hparams: Optional[dict[str, Any]] = None) -> None:
    """Train (arch, seed) jobs stand-alone with a named table's protocol, each single-threaded.

    The engine of :func:`build_ground_truth`, also used by benchmarks that need the stand-alone
    accuracy of architectures a table lacks. Results do not depend on ``workers``.

    Parameters
    ----------
    jobs
        ``(arch, seed)`` pairs.
    table
        Named table (:mod:`.tables`) whose dataset, space and stand-alone epochs to use.
    workers
        Worker processes (``spawn``); 1 trains in this process.
    on_result
        Called in this process with each job's record (``arch``, ``seed``, ``accuracy``,
        ``params``, ``seconds``, ...), in completion order.
    hparams
        Protocol arguments of :func:`~.standalone.train_standalone`; default: the table's epochs.
    """
    global _WORKER_DATA

    spec = get_table(table)
    hparams = {"epochs": int(spec.epochs)} if hparams is None else hparams
    if not jobs:
        return
    if workers == 1:
        previous, _WORKER_DATA = _WORKER_DATA, spec.loader()()
        try:
            for arch, seed in jobs:
                on_result(_run_job(arch, seed, hparams, spec.space_kwargs))
        finally:
            _WORKER_DATA = previous
        return
    with worker_pool(min(workers, len(jobs)), initializer=_init_worker, initargs=(spec.name,)) as executor:
        futures = [executor.submit(_run_job, arch, seed, hparams, spec.space_kwargs) for arch, seed in jobs]
        for future in concurrent.futures.as_completed(futures):
            on_result(future.result())


def _fingerprint(hparams: dict[str, Any], checksums: dict[str, Any], spec: Any = None) -> dict[str, Any]:
    """What a job's result depends on besides (arch, seed): results only mix when these agree."""
    space_kwargs = dict(spec.space_kwargs) if spec is not None else dict(DEFAULT_SPACE_KWARGS)
    return {"protocol": protocol(**hparams), "space": "nas_bench_201", "space_kwargs": space_kwargs,
            "dataset": spec.dataset if spec is not None else "digits_hard", "checksums": checksums}


def _read_partial(path: Path, fingerprint: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Load the finished jobs of a sidecar, dropping a truncated last line.

    The file is cut back to its last complete line, so the next append starts on a fresh line
    instead of gluing itself to the fragment a crash left behind.
    """
    if not path.exists():
        return {}
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(len(complete))
            fh.flush()
            os.fsync(fh.fileno())
    lines = complete.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return {}
    try:
        header = json.loads(lines[0])["header"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError("bench.out_path", str(path), "is not a build sidecar (bad header line); "
                          "delete it to start the build afresh") from None
    if header.get("fingerprint") != fingerprint:
        raise ConfigError("bench.out_path", str(path),
                          "holds results of another protocol, space or dataset version; finish it with the "
                          "same settings, or delete it to start afresh")
    done: dict[tuple[str, int], dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            done[(arch_key(record["arch"]), int(record["seed"]))] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            # Only a crash mid-write produces a bad line, and that is the last one (cut above).
            warnings.warn(f"{path}: skipping unreadable line {number}", RuntimeWarning, stacklevel=3)
    return done


def _read_existing_table(path: Path, fingerprint: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per-seed results of an existing final table made with the same protocol (else none)."""
    if not path.exists():
        return {}
    try:
        table = GroundTruth.load(path)
    except ConfigError:
        return {}
    recipe = table.recipe
    if recipe.get("fingerprint") != fingerprint:
        return {}
    done = {}
    for entry in table.entries:
        for seed, accuracy in (entry.get("per_seed") or {}).items():
            done[(arch_key(entry["arch"]), int(seed))] = {
                "arch": entry["arch"], "seed": int(seed), "accuracy": float(accuracy),
                "params": entry.get("params"), "seconds": None,
            }
    return done


class _Sidecar:
    """Append-only JSON-lines log of finished jobs; each line is durable once written."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a", encoding="utf-8")
        if new:
            self.write({"header": {"format": _PARTIAL_FORMAT, "fingerprint": fingerprint}})

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, allow_nan=False) + "\n")
        # fsync per line: a job costs seconds, losing one to a power cut costs more than this.
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _check_build_args(out_path: Path, seeds: Any, workers: Any, limit: Any) -> list[int]:
    if not out_path.parent.is_dir():
        raise ConfigError("bench.out_path", str(out_path), f"directory {out_path.parent} does not exist; create it first")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ConfigError("bench.seeds", seeds, "give a list of integer training seeds, e.g. [0, 1]")
    seed_list = list(seeds)
    if not seed_list or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in seed_list):
        raise ConfigError("bench.seeds", seeds, "give a non-empty list of integer training seeds, e.g. [0, 1]")
    if len(set(seed_list)) != len(seed_list):
        raise ConfigError("bench.seeds", seeds, "seeds must be distinct")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("bench.workers", workers, "use a positive integer (at most the number of CPU cores)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError("bench.limit", limit, "use a non-negative integer, or None to run every job")
    return [int(s) for s in seed_list]


def _versions() -> dict[str, str]:
    # nni, scipy and scikit-learn load here only to read their versions.
    import nni
    import scipy
    import sklearn

    return {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "nni": nni.__version__, "python": platform.python_version()}


def _make_table(archs: list[dict[str, str]], seeds: list[int], results: dict[tuple[str, int], dict[str, Any]],
                recipe: dict[str, Any], source: str, spec: Any = None) -> GroundTruth:
    """Table of the archs that have at least one finished seed, in sampling order."""
    entries = []
    for arch in archs:
        key = arch_key(arch)
        per_seed = {str(s): float(results[(key, s)]["accuracy"]) for s in seeds if (key, s) in results}
        if not per_seed:
            continue
        params = next((results[(key, s)].get("params") for s in seeds if (key, s) in results), None)
        entry: dict[str, Any] = {"arch": dict(arch), "accuracy": float(np.mean(list(per_seed.values()))),
                                 "per_seed": per_seed}
        if params is not None:
            entry["params"] = int(params)
        entries.append(entry)
    space_kwargs = dict(spec.space_kwargs) if spec is not None else dict(DEFAULT_SPACE_KWARGS)
    return GroundTruth(space="nas_bench_201", space_kwargs=space_kwargs,
                       dataset=spec.dataset if spec is not None else "digits_hard",
                       metric="test_accuracy", recipe=recipe, seeds=list(seeds), entries=entries, source=source)


def build_ground_truth(
    out_path: Union[str, os.PathLike],
    n_archs: Optional[int] = None,
    seeds: Optional[Sequence[int]] = None,
    sample_seed: int = 2026,
    workers: int = 1,
    progress: Optional[bool] = None,
    limit: Optional[int] = None,
    table: str = DEFAULT_TABLE,
    *,
    _epochs: Optional[int] = None,
) -> GroundTruth:
    """Train sampled architectures stand-alone and write the ground-truth table (resumable).

    This is how the shipped ``digits_hard`` NAS-Bench-201 table is made (``nds bench build``).
    Rerunning the same call after an interruption continues where it stopped (see the module
    docstring); results do not depend on ``workers``.

    Parameters
    ----------
    out_path
        Where to write the ``nds-ground-truth/1`` JSON table; its directory must exist. The
        resume sidecar is ``<out_path>.partial.jsonl``.
    n_archs
        Number of distinct archs (:func:`sample_architectures`); ``None``: as many as the shipped
        ``table`` holds (150; 160 for ``v1``).
    seeds
        Training seeds; every arch is trained once per seed. ``None``: the shipped ``table``'s
        (``0 1 2 3`` for ``v2_26``, ``0 1`` for ``v1`` and ``v2``).
    sample_seed
        Seed of the architecture sample; recorded in the table.
    workers
        Worker processes (``spawn``); 1 trains in this process. Use at most the number of
        free cores: each worker trains single-threaded.
    progress
        Show a progress bar on stderr: ``None`` when interactive (a terminal, not an nnictl
        trial), ``True`` / ``False`` to force it on or off.
    limit
        Run at most this many (arch, seed) jobs in this call, then stop; ``None`` runs all.
        Stopping early leaves the sidecar in place for the next call.
    table
        Which named table's recipe to follow (:mod:`.tables`): ``v2_26`` (default, the default
        recipe's), ``v2`` or ``v1`` decides the dataset, the space size and the stand-alone epochs.
    _epochs
        Private: train for this many epochs instead of the protocol's (fast tests only;
        such a table is not comparable with the shipped one, and its recipe says so).

    An existing table at ``out_path`` is never shrunk: one of the same protocol and sample is
    grown to cover what it holds and what was asked (nothing is retrained; a request it already
    covers leaves the file byte-identical), and any other file there is refused
    (:mod:`.existing_outputs`).

    Returns
    -------
    GroundTruth
        The finished table, also written to ``out_path``. If ``limit`` stopped the build
        before every job was done, a table of the jobs finished so far (archs with at least
        one seed) is returned instead and nothing is written to ``out_path``.

    Raises
    ------
    ConfigError
        On invalid arguments, or a sidecar left by a build with another protocol.

    Examples
    --------
    >>> table = build_ground_truth("table.json", n_archs=150, seeds=(0, 1), workers=2)  # doctest: +SKIP
    >>> print(bench_info("table.json"))  # doctest: +SKIP
    """
    out_path = Path(out_path)
    spec = get_table(table)
    n_archs = spec.archs if n_archs is None else n_archs
    seed_list = _check_build_args(out_path, spec.seeds if seeds is None else seeds, workers, limit)
    sample_architectures(n_archs, sample_seed)  # the arguments are checked before the table is looked at

    hparams: dict[str, Any] = {"epochs": int(spec.epochs if _epochs is None else _epochs)}
    checksums, reference = spec.checksums()
    fingerprint = _fingerprint(hparams, checksums, spec)
    # An existing table is never shrunk: the build covers what it holds too (or refuses another protocol).
    n_archs, seed_list, table_existed = table_growth(out_path, fingerprint, n_archs, seed_list, sample_seed)
    archs = sample_architectures(n_archs, sample_seed)
    sidecar_path = partial_path(out_path)
    done = _read_existing_table(out_path, fingerprint)
    in_table = set(done)
    done.update(_read_partial(sidecar_path, fingerprint))

    jobs = [(arch, seed) for arch in archs for seed in seed_list]
    pending = [(arch, seed) for arch, seed in jobs if (arch_key(arch), seed) not in done]
    to_run = pending if limit is None else pending[:limit]


    bar = progress_bar(desc="bench build", total=len(jobs), unit="job", enabled=progress)
    bar.update(len(jobs) - len(pending))
    sidecar = _Sidecar(sidecar_path, fingerprint) if to_run else None
    train_seconds = 0.0
    start = time.perf_counter()

    def record(result: dict[str, Any]) -> None:
        nonlocal train_seconds
        sidecar.write(result)  # type: ignore[union-attr]
        done[(arch_key(result["arch"]), int(result["seed"]))] = result
        train_seconds += float(result["seconds"])
        bar.set_postfix(acc=f"{result['accuracy']:.1f}", sec=f"{result['seconds']:.1f}", refresh=False)
        bar.update(1)

    try:
        run_jobs(to_run, spec.name, workers, record, hparams)
    finally:
        bar.close()
        if sidecar is not None:
            sidecar.close()

    versions = _versions()
    recipe = {
        "protocol": protocol(**hparams),
        "comparable_with_shipped_table": _epochs is None,
        "table": spec.name,
        "data": {"name": spec.dataset, "version": spec.version, "checksums": checksums,
                 "checksums_match_reference": checksums == reference},
        "sample_seed": int(sample_seed),
        "n_archs": len(archs),
        "sampling": SAMPLING_METHOD,
        "torch_version": versions["torch"],
        "versions": versions,
        "fingerprint": fingerprint,
        "builder": "nni_dynamic_supernet.bench.build.build_ground_truth",
        "train_seconds_this_call": round(train_seconds, 1),
        "wall_seconds_this_call": round(time.perf_counter() - start, 1),
    }
    finished = all((arch_key(arch), seed) in done for arch, seed in jobs)
    result = _make_table(archs, seed_list, done, recipe, source=str(out_path), spec=spec)
    if finished and table_existed and all((arch_key(arch), seed) in in_table for arch, seed in jobs):
        return GroundTruth.load(out_path)  # it already held every job: left byte-identical
    if finished:
        result.save(out_path)  # atomic: temp file + os.replace
        if sidecar_path.exists():
            sidecar_path.unlink()
    return result
