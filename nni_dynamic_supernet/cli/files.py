"""The ``nds`` command's input and output paths: checked before any work, one line when wrong."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..errors import ConfigError
from ..recipe import parse_override

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe

__all__ = ["recipe_overrides", "recipe_from_args", "input_file", "output_dir", "output_file", "read_json"]


def recipe_overrides(pairs: Optional[Sequence[str]]) -> dict:
    return dict(parse_override(p) for p in (pairs or []))


def recipe_from_args(args: Any) -> "Recipe":
    """The recipe of ``nds train`` / ``nds config show``: ``--config``, then ``--smoke``, ``--set`` and ``--strategy``.

    The smoke profile (:func:`~nni_dynamic_supernet.recipe.smoke_overrides` of the chosen recipe)
    comes before ``--set``, so an explicit override wins over it; ``--strategy`` is ``--set
    strategy=...`` and may not contradict it.
    """
    from ..recipe import load_recipe, smoke_overrides
    overrides = recipe_overrides(args.set)
    if args.strategy is not None:
        if "strategy" in overrides and overrides["strategy"] != args.strategy:
            raise ConfigError("--strategy", args.strategy, f"contradicts --set strategy={overrides['strategy']}; "
                                                           "give the strategy once")
        overrides["strategy"] = args.strategy
    if getattr(args, "skip_nonfinite", False):
        overrides["training.skip_nonfinite"] = True
    chosen = load_recipe(args.config, overrides)
    if not getattr(args, "smoke", False):
        return chosen
    return load_recipe(args.config, {**smoke_overrides(chosen), **overrides})


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


def output_file(path: str, field: str = "--out", example: str = "predictions.json") -> Path:
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


def read_json(path: str, field: str) -> Any:
    from ..json_inputs import load_json
    return load_json(input_file(path, field, "JSON file"), field)

