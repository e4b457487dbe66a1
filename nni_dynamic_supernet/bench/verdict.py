"""``nds bench verdict``: run pre-registered paired tests and write their result files.

Each registration (:mod:`.verdict_registration`) expands into jobs: supernet trainings
(``nds bench compare``'s runs, one per arm and seed, each single-threaded) and, for a
``searchers`` test, searches of the trained supernets plus stand-alone trainings of the
architectures they find. Jobs shared by several registrations (the same recipe, budget and
seed, e.g. SPOS at 240 epochs as the baseline of two tests) run once.

Everything resumes: a finished training leaves ``verdict_row.json`` in its run folder under
``--runs-dir``, every finished job is also kept in the test's ``<name>.result.json``
(rewritten atomically after each job, so a committed result file resumes a test on another
machine), and a job is reused only when its identity -- strategy, seed, every recipe
override and the fingerprint of the base recipe (its content without comments and without the
``output`` section) -- is unchanged. A result file is never shrunk: when it holds runs that no
job of the registration matches any more (the base recipe changed), the runner stops and names
them; ``--overwrite`` discards them. A registration edited after
its result file was started is refused: a pre-registered design does not change.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import math
import platform
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..atomic_io import atomic_write_json, finite_or_null
from ..errors import ConfigError
from ..ranking.tables import TABLES
from ..recipe import load_recipe
from ..strict_yaml import load_yaml_file
from .compare import DEFAULT_RECIPE, table_overrides
from .paired_stats import min_detectable_effect, paired_summary
from .verdict_registration import Registration, Side, load_registration
from .worker_pool import worker_pool

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["RESULT_FORMAT", "run_verdicts", "train_jobs", "job_identity", "build_result", "read_result",
           "write_strict_json", "recipe_fingerprint", "run_environment"]

RESULT_FORMAT = "nds-verdict-result/1"
ROW_FILE = "verdict_row.json"
#: The per-run values a result file keeps (besides the identity and the predictions).
_ROW_KEYS = ("strategy", "seed", "kendall_tau", "kendall_tau_stratified", "spearman", "p_at_top5", "spearman_top10",
             "spearman_top20", "cb", "rho_cc", "top1_true_accuracy", "final_loss", "median_predicted_accuracy",
             "epochs", "steps", "path_forwards", "cpu_seconds", "seconds")
_COMPUTE_KEYS = ("steps", "path_forwards", "cpu_seconds", "seconds")


def write_strict_json(path: Union[str, Path], obj: Any) -> Path:
    """Write ``obj`` as strict JSON (a non-finite float becomes ``null``), atomically."""
    return atomic_write_json(path, obj)


#: Base recipe sections that say where and how results are written, not what they are.
_OUTPUT_ONLY_SECTIONS = ("output",)


def recipe_fingerprint(path: Union[str, Path]) -> str:
    """The SHA-256 of a recipe file's content, without its comments and its ``output`` section.

    A comment, a logger or a progress bar does not change what a run computes, so editing one
    keeps every finished job of a registered test reusable; any other change starts new jobs.
    """
    data = load_yaml_file(path, "config")
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in _OUTPUT_ONLY_SECTIONS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _base_recipe(reg: Registration) -> tuple[str, str]:
    """The base recipe's path and its :func:`recipe_fingerprint` (part of every job's identity)."""
    path = reg.config_path() or DEFAULT_RECIPE
    if not Path(path).is_file():
        raise ConfigError(f"{reg.path}: config", reg.config, "file not found")
    return str(path), recipe_fingerprint(path)


def job_identity(job: dict) -> str:
    """What makes two jobs the same run: kind, strategy, seed, overrides, base recipe hash (and the search)."""
    keys = ("kind", "strategy", "seed", "overrides", "base_sha256", "search")
    return json.dumps({k: job.get(k) for k in keys}, sort_keys=True, default=str)


def _tag(job: dict) -> str:
    """A short folder name for every job of one arm (the identity without the seed)."""
    text = json.dumps({k: job.get(k) for k in ("strategy", "overrides", "base_sha256")}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _train_job(reg: Registration, side: Side, seed: int, runs_dir: Path) -> dict:
    config, sha = _base_recipe(reg)
    # A named table sets the dataset and space size too; a table file (tests, own tables) only the ground truth.
    table = table_overrides(reg.table) if reg.table in TABLES else {"ranking.ground_truth": str(_table_path(reg))}
    overrides = {**table, **reg.overrides, **side.overrides}
    job = {"kind": "train", "strategy": side.recipe, "seed": int(seed), "overrides": overrides, "config": config,
           "base_sha256": sha}
    job["out"] = str(runs_dir / str(side.recipe) / _tag(job) / f"seed{seed}")
    return job


def _table_path(reg: Registration) -> Path:
    p = Path(reg.table)
    return p if p.is_absolute() else reg.path.parent / p


def train_jobs(reg: Registration, runs_dir: Path) -> list[dict]:
    """The supernet trainings of ``reg``: both arms (``recipes``) or the shared supernet (``searchers``), per seed.

    Seed by seed, both arms of a seed together: a test stopped partway holds whole pairs.
    """
    sides = [reg.technique, reg.baseline] if reg.kind == "recipes" else [reg.supernet]
    return [_train_job(reg, side, seed, runs_dir) for seed in reg.seeds for side in sides]  # type: ignore[arg-type]


def search_jobs(reg: Registration, runs_dir: Path) -> list[dict]:
    """The searches of a ``searchers`` test: each arm on each seed's supernet."""
    out = []
    for arm, side in (("technique", reg.technique), ("baseline", reg.baseline)):
        for seed in reg.seeds:
            supernet = _train_job(reg, reg.supernet, seed, runs_dir)  # type: ignore[arg-type]
            out.append({"kind": "search", "arm": arm, "strategy": supernet["strategy"], "seed": int(seed),
                        "overrides": supernet["overrides"], "base_sha256": supernet["base_sha256"],
                        "search": {**reg.search, **side.overrides}, "supernet": job_identity(supernet),
                        "checkpoint": str(Path(supernet["out"]) / "supernet.pt")})
    return out


# ------------------------------------------------------------------------------------------- workers
def run_environment() -> dict:
    """What decides a run's floating-point path besides its recipe: PyTorch's build, kernels and machine.

    A job is bit-reproducible only where these agree (docs: verdicts), so every row records them.
    """
    import torch
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "python": platform.python_version(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _train(job: dict) -> dict:
    """Train one job (in a worker) and return its compact row, also saved in the run folder."""
    from .compare import _run_one
    row = _run_one(job)
    results = json.loads((Path(job["out"]) / "results.json").read_text())
    compact = {k: row.get(k) for k in _ROW_KEYS}
    compact.update(identity=job_identity(job), environment=run_environment(),
                   predictions=[float(p["predicted_accuracy"]) for p in results["ranking"]["predictions"]])
    atomic_write_json(Path(job["out"]) / ROW_FILE, finite_or_null(compact))
    return compact


def _search(job: dict) -> dict:
    """Search one trained supernet with one arm's settings (in a worker); the top architectures and seconds."""
    import torch

    from ..pipeline import load_supernet, search_run
    from ..quiet_logs import quiet_third_party_logs
    torch.set_num_threads(1)
    quiet_third_party_logs()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    cpu = time.process_time()
    run = load_supernet(job["checkpoint"], {**job["search"], "seed": job["seed"], "output.plots": False})
    found = search_run(run)
    return {"identity": job_identity(job), "arm": job["arm"], "seed": job["seed"], "seconds": float(found["seconds"]),
            "cpu_seconds": time.process_time() - cpu, "evaluations": int(found["evaluations"]),
            "top": [{"arch": r["arch"], "accuracy": float(r["accuracy"])} for r in found["top"]]}


def _execute(jobs: Sequence[dict], fn: Callable[[dict], dict], workers: int,
             on_done: Callable[[dict, Optional[dict], Optional[str]], None]) -> None:
    """Run ``fn`` on every job, in this process or ``spawn`` workers, calling ``on_done(job, row, error)``."""
    if not jobs:
        return
    if workers == 1:
        for job in jobs:
            try:
                row, error = fn(job), None
            except Exception as exc:  # one failed run must not stop the others; its error is recorded
                row, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            on_done(job, row, error)
        return
    with worker_pool(min(workers, len(jobs))) as pool:
        futures = {pool.submit(fn, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            exc = future.exception()
            error = None if exc is None else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            on_done(futures[future], None if exc is not None else future.result(), error)


# ------------------------------------------------------------------------------------------- results
def _refuse_to_shrink(reg: Registration, runs_dir: Path) -> None:
    """Stop when ``reg``'s result file holds finished jobs that its jobs no longer match.

    Writing the file again would drop them: a base recipe whose content changed gives every job a
    new identity, and the file would restart at zero runs.
    """
    data = read_result(reg)
    if data is None:
        return
    trainings, searches = _identities(reg, runs_dir), _search_identities(reg, runs_dir)
    stale = [r for r in data.get("runs", []) if r.get("identity") not in trainings]
    stale += [s for s in data.get("searches", []) if s.get("identity") not in searches]
    if stale:
        raise ConfigError(str(reg.result_path), f"{len(stale)} finished jobs",
                          "were run with another base recipe or overrides than the registration gives now; restore "
                          "them (the jobs' identities are in the file), or pass --overwrite to discard them")


def read_result(reg: Registration) -> Optional[dict]:
    """The existing result file of ``reg``, or ``None``; refuses one written for another version of the file."""
    path = reg.result_path
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(str(path), "unreadable", "is not a valid result file; move it away to start over") from None
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        raise ConfigError(str(path), data.get("format") if isinstance(data, dict) else type(data).__name__,
                          f"is not an {RESULT_FORMAT} file; move it away to start over")
    if data.get("registration_sha256") != reg.sha256:
        raise ConfigError(str(reg.path), "edited", "the registration changed after its runs started (its result file "
                                                   "holds another hash); a registered design cannot change: register "
                                                   "a new test under a new name")
    return data


def _arm_value(reg: Registration, rows: dict, searches: dict, standalone: dict, runs_dir: Path,
               arm: str, seed: int) -> tuple[Optional[float], Optional[dict]]:
    """The measure of one arm on one seed and the record it came from (``None`` while it has not run)."""
    if reg.kind == "recipes":
        side = reg.technique if arm == "technique" else reg.baseline
        row = rows.get(job_identity(_train_job(reg, side, seed, runs_dir)))
        if row is None or row.get(reg.measure) is None:
            return None, row
        return float(row[reg.measure]), row
    job = next(j for j in search_jobs(reg, runs_dir) if j["arm"] == arm and j["seed"] == seed)
    found = searches.get(job_identity(job))
    if found is None:
        return None, None
    accs = standalone.get(_arch_key(found["top"][0]["arch"]), {})
    values = [accs.get(str(s)) for s in reg.standalone_seeds]
    if any(v is None for v in values):
        return None, found
    return float(np.mean(values)), {**found, "best_standalone_accuracy": float(np.mean(values))}


def _arch_key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


def build_result(reg: Registration, rows: dict, searches: dict, standalone: dict, runs_dir: Path,
                 errors: Optional[dict] = None) -> dict:
    """The result payload of ``reg`` from the finished jobs so far (``status`` says whether every seed ran)."""
    per_seed, records = [], {"technique": [], "baseline": []}
    for seed in reg.seeds:
        t, t_rec = _arm_value(reg, rows, searches, standalone, runs_dir, "technique", seed)
        b, b_rec = _arm_value(reg, rows, searches, standalone, runs_dir, "baseline", seed)
        for arm, rec in (("technique", t_rec), ("baseline", b_rec)):
            if rec is not None:
                records[arm].append(rec)
        if t is not None and b is not None:
            per_seed.append({"seed": seed, "technique": t, "baseline": b, "diff": t - b})
    stats = paired_summary([p["technique"] for p in per_seed], [p["baseline"] for p in per_seed], reg.alpha)
    complete = len(per_seed) == reg.n
    compute = {arm: {k: _mean([r.get(k) for r in recs]) for k in _COMPUTE_KEYS} for arm, recs in records.items()}
    if reg.kind == "searchers":
        supernets = [rows.get(job_identity(_train_job(reg, reg.supernet, s, runs_dir))) for s in reg.seeds]
        compute["supernet"] = {k: _mean([r.get(k) for r in supernets if r]) for k in _COMPUTE_KEYS}
    payload = {
        "format": RESULT_FORMAT, "name": reg.name, "registration": reg.path.name, "registration_sha256": reg.sha256,
        "registered": reg.registered, "paper": reg.paper, "claim": reg.claim, "kind": reg.kind,
        "technique": _describe(reg.technique), "baseline": _describe(reg.baseline),
        "supernet": _describe(reg.supernet) if reg.supernet else None, "table": reg.table, "measure": reg.measure,
        "status": "complete" if complete else "incomplete", "n_registered": reg.n, "n_seeds": len(per_seed),
        "alpha": reg.alpha, "power": reg.power, "pilot_sd": reg.pilot_sd,
        "mde80": min_detectable_effect(reg.pilot_sd, reg.n, reg.alpha, 0.8), "mde": reg.mde,
        **stats, "per_seed": per_seed, "compute": compute,
        "runs": [rows[i] for i in sorted(_identities(reg, runs_dir)) if i in rows],
        "searches": [searches[i] for i in sorted(searches) if i in _search_identities(reg, runs_dir)],
        "standalone": {k: v for k, v in standalone.items() if k in _best_keys(reg, searches, runs_dir)},
        "errors": sorted((errors or {}).values()),
    }
    if reg.kind == "recipes":
        payload.pop("searches"), payload.pop("standalone")
    return finite_or_null(payload)


def _describe(side: Side) -> dict:
    return {"recipe": side.recipe, "set": side.overrides}


def _mean(values: Sequence[Any]) -> Optional[float]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else None


def _identities(reg: Registration, runs_dir: Path) -> set:
    return {job_identity(j) for j in train_jobs(reg, runs_dir)}


def _search_identities(reg: Registration, runs_dir: Path) -> set:
    return {job_identity(j) for j in search_jobs(reg, runs_dir)} if reg.kind == "searchers" else set()


def _best_keys(reg: Registration, searches: dict, runs_dir: Path) -> set:
    return {_arch_key(searches[i]["top"][0]["arch"]) for i in _search_identities(reg, runs_dir) if i in searches}


# ------------------------------------------------------------------------------------------- the runner
def _known_rows(regs: Sequence[Registration], jobs: Sequence[dict]) -> tuple[dict, dict, dict]:
    """Finished trainings, searches and stand-alone accuracies from result files and run folders."""
    rows: dict = {}
    searches: dict = {}
    standalone: dict = {}
    for reg in regs:
        data = read_result(reg)
        if data is None:
            continue
        rows.update({r["identity"]: r for r in data.get("runs", []) if "identity" in r})
        searches.update({s["identity"]: s for s in data.get("searches", []) if "identity" in s})
        for key, accs in data.get("standalone", {}).items():
            standalone.setdefault(key, {}).update(accs)
    for job in jobs:
        path = Path(job["out"]) / ROW_FILE
        if job_identity(job) in rows or not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and saved.get("identity") == job_identity(job):
            rows[saved["identity"]] = saved
    return rows, searches, standalone


def _check_jobs(jobs: Sequence[dict]) -> None:
    """Build every job's recipe before anything runs, so a bad override fails at once with one line."""
    for job in jobs:
        load_recipe(job["config"], {**job["overrides"], "strategy": job["strategy"], "seed": job["seed"]})


def run_verdicts(paths: Sequence[Union[str, Path]], runs_dir: Union[str, Path] = Path("bench_verdicts"),
                 workers: int = 1, overwrite: bool = False) -> list[dict]:
    """Run every job of the registrations at ``paths`` (shared jobs once) and write their result files.

    Parameters
    ----------
    paths
        Registration files (``benchmarks/verdicts/<name>.yaml``).
    runs_dir
        Folder of the run folders (checkpoints, results.json per run); reused across calls.
    workers
        Worker processes; every run is single-threaded, so results do not depend on it.
    overwrite
        Discard the runs of a result file that no job matches any more (by default such a file
        stops the call, so that no finished run is lost).

    Returns
    -------
    list of dict
        The result payload of every registration, as written to ``<name>.result.json``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("--workers", workers, "must be an integer >= 1")
    regs = [load_registration(p) for p in paths]
    names = [r.name for r in regs]
    if len(set(names)) != len(names):
        raise ConfigError("REGISTRATION", names, "names a test twice; give each registration once")
    runs_dir = Path(runs_dir)
    jobs: dict[str, dict] = {}
    for reg in regs:
        for job in train_jobs(reg, runs_dir):
            jobs.setdefault(job_identity(job), job)
    _check_jobs(list(jobs.values()))
    if not overwrite:
        for reg in regs:
            _refuse_to_shrink(reg, runs_dir)
    rows, searches, standalone = _known_rows(regs, list(jobs.values()))
    errors: dict[str, str] = {}

    def save() -> list[dict]:
        out = []
        for reg in regs:
            payload = build_result(reg, rows, searches, standalone, runs_dir,
                                   {i: e for i, e in errors.items() if i in _identities(reg, runs_dir)
                                    or i in _search_identities(reg, runs_dir)})
            write_strict_json(reg.result_path, payload)
            out.append(payload)
        return out

    def done(job: dict, row: Optional[dict], error: Optional[str]) -> None:
        identity = job_identity(job)
        if row is None:
            errors[identity] = f"{job.get('strategy')} seed {job['seed']}: {error}"
            _logger.warning("verdict: %s", errors[identity])
        elif job["kind"] == "search":
            searches[identity] = row
        else:
            rows[identity] = row
            _logger.info("verdict: %s seed %d done (%s = %.4f, %.0f CPU s)", job["strategy"], job["seed"],
                         "kendall_tau", row.get("kendall_tau") or float("nan"), row.get("cpu_seconds") or 0.0)
        save()

    pending = [job for identity, job in jobs.items() if identity not in rows]
    _logger.info("verdict: %d trainings, %d finished, %d to run with %d workers", len(jobs), len(jobs) - len(pending),
                 len(pending), workers)
    save()
    _execute(pending, _train, workers, done)
    for reg in regs:
        if reg.kind == "searchers":
            _run_searches(reg, runs_dir, rows, searches, standalone, workers, done)
    return save()


def _run_searches(reg: Registration, runs_dir: Path, rows: dict, searches: dict, standalone: dict, workers: int,
                  done: Callable[[dict, Optional[dict], Optional[str]], None]) -> None:
    """Search every trained supernet of ``reg`` with both arms, then train the found architectures stand-alone."""
    ready = [j for j in search_jobs(reg, runs_dir) if j["supernet"] in rows and job_identity(j) not in searches]
    missing = [j for j in ready if not Path(j["checkpoint"]).is_file()]
    if missing:
        # A committed result file can hold a supernet's row without its checkpoint: train it again (deterministic).
        retrain = [jj for jj in train_jobs(reg, runs_dir) if job_identity(jj) in {j["supernet"] for j in missing}]
        _execute(retrain, _train, workers, done)
    _execute(ready, _search, workers, done)
    from .standalone_lookup import StandaloneAccuracy
    lookup = StandaloneAccuracy(runs_dir / f"standalone_cache_{reg.table}.json", reg.table, list(reg.standalone_seeds))
    lookup.cache_update(standalone)
    best = [searches[i]["top"][0]["arch"] for i in _search_identities(reg, runs_dir) if i in searches]
    lookup.prefetch(best, workers)
    for arch in best:
        standalone.setdefault(_arch_key(arch), {}).update(lookup.known(arch))
