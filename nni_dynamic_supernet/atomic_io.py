"""Atomic file writes: a crash or a concurrent reader never sees a half-written file.

Every result, table and checkpoint the plugin writes goes through these helpers: the
bytes go to a temporary file in the destination directory, are flushed to disk, and
the temporary file then replaces the destination with :func:`os.replace`. A SIGTERM or
SIGINT that arrives meanwhile waits until the file is in place
(:func:`~nni_dynamic_supernet.signals.deferred`).

JSON is written strictly (``allow_nan=False``): a NaN or infinite number, which no JSON
reader accepts, is written as ``null``; the writers that produce one (results.json's
``default``, for instance) say why beside it.
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Union


__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_torch_save", "finite_or_null",
           "remove_orphaned_temporaries"]

PathLike = Union[str, "os.PathLike[str]"]

_TMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (the parent directory is created if needed)."""
    from .signals import deferred
    with deferred():
        return _write_bytes(Path(path), data)


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    """Serialise ``obj`` as strict JSON first (a bad value leaves nothing behind), then write it atomically.

    NaN and infinite numbers become ``null`` (see the module docstring).
    """
    return atomic_write_text(path, json.dumps(finite_or_null(obj), indent=1, allow_nan=False, default=_plain) + "\n")


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (also NumPy scalars) replaced by ``None``."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if hasattr(obj, "item") and not hasattr(obj, "__len__"):  # a NumPy or torch scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_torch_save(path: PathLike, obj: Any) -> Path:
    """``torch.save`` to memory, then write the bytes atomically."""
    import torch  # here, so that JSON and text writers (the CLI's parser, bench tables) do not load torch
    from .signals import deferred
    with deferred():  # serialising a big checkpoint takes a while: a signal waits for the whole save
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return atomic_write_bytes(path, buffer.getvalue())


def remove_orphaned_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporary files that writers killed mid-write (``kill -9``) left in ``folder``.

    Call it only while holding ``folder``'s lock: a live writer's temporary file would go too.

    Parameters
    ----------
    folder
        The folder (not its subfolders).

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    for tmp in Path(folder).glob(f".*{_TMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
