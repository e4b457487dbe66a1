"""A run directory is a unit with an owner: one writer at a time, finished runs kept, resumes checked.

``nds train --out OUT`` (and the nnictl trial runner) claim ``OUT`` with
:func:`claim_run_dir` before any work:

* **Lock.** ``OUT/nds.lock`` is held (``flock``) while the run writes. A second run into
  ``OUT`` is refused with one line naming the holder's PID and host. The kernel drops the
  lock when its process dies, however it dies, so a lock left by a killed run (its PID is
  dead) is simply taken over. Where ``flock`` is not supported (some network file
  systems) the file itself is the lock and a dead PID on this host is taken over.
* **Finished runs are kept.** ``OUT`` holding ``results.json`` is a finished run: it is
  only replaced with ``--overwrite``, which first removes every file the earlier run wrote
  (so the folder never mixes two runs' files). An unfinished run (``lightning/last.ckpt``
  but no ``results.json``) is continued with ``--resume`` or replaced with ``--overwrite``;
  without either it is refused rather than silently restarted.
* **The recipe, readable.** ``OUT/recipe.yaml`` holds the resolved recipe (every field) from the
  start of training on; ``nds train --config OUT/recipe.yaml`` runs it again. A resume keeps it
  unless a free field (below) changed, and then rewrites it and logs the fields that changed.
* **Resume only the same run.** ``OUT/run.json`` records the recipe at the start of a run.
  ``--resume`` compares the new recipe with it and refuses any difference in
  :func:`same_run_fields`, naming the fields: the first epochs and the last must come from
  one recipe.
* **Orphans removed.** Temporary files of a write that a killed run (``kill -9``) never
  finished are deleted once the lock is held; the last whole checkpoint stays.
* **Checks before work.** Every path the run will write must be writable and of the right
  kind (``results.json`` must not be a directory, ``lightning`` not a file) before the
  data is even loaded, not after hours of training.

Which fields make two recipes "the same run" is decided by :data:`FREE_FIELDS`: those that
do not change what is trained or what the per-epoch log holds (where the data lives, worker
and thread counts, how often to checkpoint, the search that runs after training, which
files and figures to write). Everything else must match.
"""
from __future__ import annotations

import datetime
import errno
import json
import logging
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from .atomic_io import atomic_write_json, atomic_write_text, remove_orphaned_temporaries
from .errors import ConfigError

__all__ = ["RUN_FILE", "RECIPE_FILE", "LOCK_FILE", "RUN_FORMAT", "FREE_FIELDS", "RunClaim", "claim_run_dir", "same_run_fields",
           "recipe_differences", "primary_process", "check_run_outputs", "DirectoryLock", "refuse_to_replace"]

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.yaml"
LOCK_FILE = "nds.lock"
RUN_FORMAT = "nds-run/1"

#: Recipe fields that may differ between a run and its resume (dotted; ``search.*`` means the section).
#: The per-epoch probes score subnets with ``search.bn_mode`` / ``search.bn_batches``, so those two stay fixed.
FREE_FIELDS: tuple[str, ...] = (
    "data.root", "data.download", "data.num_workers", "data.pin_memory",
    "training.num_threads", "training.skip_nonfinite", "training.checkpoint_every_n_epochs",
    "search.*", "ranking.n_bins", "output.logger", "output.tensorboard", "output.plots", "output.progress",
)
_FIXED_SEARCH_FIELDS = ("search.bn_mode", "search.bn_batches")

#: Files and folders a training run writes into its directory (figures are added from the plot registry).
_RUN_FILES = ("results.json", "best_arch.json", "supernet.pt", "supernet_shifted.pt", RUN_FILE, RECIPE_FILE)
_RUN_DIRS = ("lightning", "tensorboard", "csv", "wandb", "mlruns")  # the checkpoint and every logger's folder

#: The comment above a run's ``recipe.yaml``.
_RECIPE_HEADER = ("The resolved recipe of this run: every field, after the strategy preset, the template and the "
                  "overrides.", "nds train --config recipe.yaml --out NEW_DIR runs it again.")

_logger = logging.getLogger("nni_dynamic_supernet")


# ---------------------------------------------------------------------------------------------- fingerprint
def _flat(obj: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj, dict) and ("." not in prefix or prefix == "space.kwargs" or prefix.startswith("space.kwargs.")):
        for key, value in obj.items():
            _flat(value, f"{prefix}.{key}" if prefix else str(key), out)
        if not obj and prefix:
            out[prefix] = {}
    else:
        out[prefix] = obj
    return out


def _is_free(dotted: str) -> bool:
    if dotted in _FIXED_SEARCH_FIELDS:
        return False
    return any(dotted == f or (f.endswith(".*") and dotted.startswith(f[:-1])) for f in FREE_FIELDS)


def same_run_fields(recipe_dict: dict) -> dict[str, Any]:
    """The dotted fields of a recipe (``Recipe.to_dict()``) that must match for a resume, with their values."""
    return {k: v for k, v in _flat(recipe_dict, "", {}).items() if not _is_free(k)}


def recipe_differences(started: dict, now: dict, every_field: bool = False) -> list[str]:
    """``field (old -> new)`` for every :func:`same_run_fields` entry that differs, sorted by field.

    With ``every_field`` the free fields are compared too.
    """
    a, b = (_flat(started, "", {}), _flat(now, "", {})) if every_field else (same_run_fields(started),
                                                                              same_run_fields(now))
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            show = lambda v: "unset" if v is missing else json.dumps(v, default=str)[:60]  # noqa: E731
            out.append(f"{key} ({show(old)} -> {show(new)})")
    return out


# ---------------------------------------------------------------------------------------------- the lock
def primary_process() -> bool:
    """Whether this process owns the run directory: rank 0 of a DDP run, or a plain process.

    Lightning starts ranks 1.. as copies of the command with ``LOCAL_RANK`` set, ``torchrun``
    sets ``RANK``; only rank 0 claims, checks and writes the directory.
    """
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class DirectoryLock:
    """``DIR/nds.lock``: held by one process at a time (see the module docstring).

    Parameters
    ----------
    directory
        The directory to lock (must exist).
    field
        What a refusal names (``--out``).
    command
        What the holder is doing, written into the lock for the next one's message.
    """

    def __init__(self, directory: Path, field: str = "--out", command: str = "nds") -> None:
        self.path = Path(directory) / LOCK_FILE
        self.field = field
        self.command = command
        self._fd: Optional[int] = None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            return (f"{info.get('command', 'nds')} (PID {int(info['pid'])} on {info.get('host', '?')}, "
                    f"since {info.get('started', '?')})")
        except (OSError, ValueError, KeyError, TypeError):
            return "another nds process (its lock file names no PID)"

    def _refuse(self) -> None:
        raise ConfigError(self.field, str(self.path.parent), f"{self._holder()} is writing into this directory; "
                                                             "wait for it to finish or choose another --out")

    def acquire(self) -> "DirectoryLock":
        """Take the lock or raise a one-line :class:`ConfigError` naming the holder."""
        import fcntl
        for _ in range(10):  # retried only when the file was replaced between open and flock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConfigError(self.field, str(self.path.parent),
                                  f"cannot create its lock file ({exc.strerror}); name a directory you can write to") \
                    from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                return self._acquire_without_flock()
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                self._write_info(fd)
                return self
            os.close(fd)  # the holder removed the file as we opened it: try the new one
        self._refuse()
        return self

    def _acquire_without_flock(self) -> "DirectoryLock":
        """The lock file itself is the lock; a lock of a dead PID on this host is taken over."""
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    info = json.loads(self.path.read_text(encoding="utf-8"))
                    stale = info.get("host") == socket.gethostname() and not _pid_alive(int(info["pid"]))
                except (OSError, ValueError, KeyError, TypeError):
                    stale = False
                if not stale:
                    self._refuse()
                self.path.unlink(missing_ok=True)
                continue
            self._fd = fd
            self._write_info(fd)
            return self
        self._refuse()
        return self

    def _write_info(self, fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": datetime.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)

    def release(self) -> None:
        """Remove the lock file and drop the lock (removal first: nobody locks a file about to vanish)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------------------------------------- checks
def _figure_names() -> list[str]:
    from .plots import RESULT_PLOTS
    return [f"{stem}.png" for stem in RESULT_PLOTS]


def check_run_outputs(out: Path, field: str = "--out") -> None:
    """Refuse, before any work, an output path of the run that exists as the wrong kind or cannot be written."""
    for name in _RUN_FILES:
        p = out / name
        if p.is_dir():
            raise ConfigError(field, str(out), f"{p} is a directory, but the run writes a file there; move it away")
    for name in _RUN_DIRS:
        p = out / name
        if p.exists() and not p.is_dir():
            raise ConfigError(field, str(out), f"{p} is a file, but the run writes a folder there; move it away")
        if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(field, str(out), f"{p} is not writable; fix its permissions or choose another --out")


def refuse_to_replace(paths: list, overwrite: bool, field: str = "--out") -> None:
    """Refuse to replace result files of an earlier command (a directory in their place always) unless ``--overwrite``.

    ``nds search``, ``evaluate``, ``rank`` and ``export`` write files another call may have
    written; replacing them silently would lose that call's results.
    """
    for path in paths:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(field, str(p), "is a directory where a result file is written; move it away")
        if p.exists() and not overwrite:
            raise ConfigError(field, str(p), "exists from an earlier call; pass --overwrite to replace it, "
                                             "or choose another --out")


def _read_run_file(out: Path) -> Optional[dict]:
    path = out / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("recipe"), dict) else None


class RunClaim:
    """What :func:`claim_run_dir` decided: where to resume from, and the start of the run.

    Attributes
    ----------
    resume_from
        ``OUT/lightning/last.ckpt`` when the run continues, else ``None``.
    """

    def __init__(self, out: Path, recipe_dict: dict, resume_from: Optional[str], overwrite: bool,
                 command: str, active: bool) -> None:
        self.out = out
        self.recipe_dict = recipe_dict
        self.resume_from = resume_from
        self.overwrite = overwrite
        self.command = command
        self.active = active

    def start(self) -> None:
        """Called once the recipe, data and space are known good, right before training.

        With ``--overwrite`` the earlier run's files go first; then ``run.json`` records
        the recipe (kept as it was on a resume) and ``recipe.yaml`` shows it.
        """
        if not self.active:
            return
        if self.overwrite:
            for name in (*_RUN_FILES, *_figure_names()):
                (self.out / name).unlink(missing_ok=True)
            for name in _RUN_DIRS:
                shutil.rmtree(self.out / name, ignore_errors=True)
        if self.resume_from is None or _read_run_file(self.out) is None:
            atomic_write_json(self.out / RUN_FILE, {
                "format": RUN_FORMAT, "command": self.command,
                "started": datetime.datetime.now().isoformat(timespec="seconds"),
                "free_fields": list(FREE_FIELDS), "recipe": self.recipe_dict})
        self._write_recipe_yaml()

    def _write_recipe_yaml(self) -> None:
        """``OUT/recipe.yaml``: written at a run's start; on a resume kept, or rewritten with the changes logged.

        A resume's recipe equals the run's in every field but the free ones (:func:`claim_run_dir`
        checked it), so a rewrite can only change those, and the log says which.
        """
        from .strict_yaml import dump_yaml
        path = self.out / RECIPE_FILE
        if self.resume_from is not None and path.is_file():
            try:
                import yaml
                before = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, yaml.YAMLError):
                before = None
            if before == self.recipe_dict:
                return
            if isinstance(before, dict):
                changed = recipe_differences(before, self.recipe_dict, every_field=True)
                _logger.warning("%s: rewritten for this resume; changed: %s", path, "; ".join(changed[:6]) + (
                    f"; and {len(changed) - 6} more" if len(changed) > 6 else ""))
        atomic_write_text(path, dump_yaml(self.recipe_dict, _RECIPE_HEADER))


@contextmanager
def claim_run_dir(out: Path, recipe_dict: dict, resume: Optional[bool], overwrite: bool = False,
                  command: str = "nds train", field: str = "--out") -> Iterator[RunClaim]:
    """Lock ``out`` and decide how the run may use it (see the module docstring).

    Parameters
    ----------
    out
        The run directory (created if missing).
    recipe_dict
        ``Recipe.to_dict()`` of the run.
    resume
        ``True``: continue the run in ``out`` (``--resume``); ``False``: a new run;
        ``None``: continue when ``out`` holds an unfinished run (the nnictl trial runner).
    overwrite
        Replace a run that ``out`` holds (``--overwrite``).
    command, field
        How the run and its output option are named in messages.

    Yields
    ------
    RunClaim
        Call :meth:`RunClaim.start` right before training.

    Raises
    ------
    ConfigError
        When another process holds ``out``, when ``out`` holds a run that this call may not
        replace, or when a resume's recipe differs from the run's.
    """
    if not primary_process():
        last = out / "lightning" / "last.ckpt"
        yield RunClaim(out, recipe_dict, str(last) if resume is not False and last.is_file() else None, False,
                       command, active=False)
        return
    if resume and overwrite:
        raise ConfigError("--overwrite", True, "give --resume (continue the run) or --overwrite (replace it), not both")
    check_run_outputs(out, field)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(field, str(out), f"cannot be created ({exc.strerror or type(exc).__name__}); "
                                           "name a directory you can write to") from None
    lock = DirectoryLock(out, field, command).acquire()
    try:
        last = out / "lightning" / "last.ckpt"
        finished = (out / "results.json").is_file()
        resume_from = None
        if finished and not overwrite:
            hint = ("it is complete, there is nothing to resume; " if resume else "")
            how = ("pass --overwrite to replace it, or choose another --out" if resume is not None
                   else "move it away or give the trial another output directory")
            raise ConfigError(field, str(out), f"holds a finished run (results.json); {hint}{how}")
        if not finished and last.is_file() and not overwrite:
            if resume is False:
                raise ConfigError(field, str(out), "holds an unfinished run (lightning/last.ckpt); continue it with "
                                                   "--resume, or replace it with --overwrite")
            started = _read_run_file(out)
            if started is not None:
                diff = recipe_differences(started["recipe"], recipe_dict)
                if diff:
                    shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
                    raise ConfigError("--resume", str(out), f"the run was started with another recipe: {shown}; "
                                                            "resume with the same recipe, or pass --overwrite")
            resume_from = str(last)
        elif resume and not overwrite:
            raise ConfigError("--resume", str(out), "no lightning/last.ckpt in the output directory to resume from")
        # Whatever killed an earlier writer outright left its temporary files; the lock makes them
        # orphans. Only a claim that goes on to write clears them: a refused call changes nothing.
        for folder in (out, out / "lightning"):
            for tmp in remove_orphaned_temporaries(folder):
                _logger.info("%s: removed, a write that a killed run left unfinished", tmp)
        yield RunClaim(out, recipe_dict, resume_from, overwrite, command, active=True)
    finally:
        lock.release()
