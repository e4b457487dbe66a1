"""What a failed command leaves behind: nothing, not even the empty output directory it created.

``nds`` and the nnictl trial runner record, before any work, whether each output directory
existed; when the run then fails on bad input, :func:`remove_empty_new_dirs` removes the
directories it created and left empty (a directory that was there before, or that holds
anything, is kept).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["remove_empty_new_dirs", "missing_dirs"]


def remove_empty_new_dirs(existed: dict) -> None:
    """Remove each directory of ``existed`` (path -> whether it existed before the run) made by the run and empty."""
    for path, was_there in existed.items():
        p = Path(path)
        # os.path.isdir: a path the OS refuses to look up (a name too long) was never made, so there is nothing to do.
        if not was_there and os.path.isdir(p) and not any(p.iterdir()):
            p.rmdir()


def missing_dirs(path: Path) -> list[str]:
    """``path`` and its parents that do not exist yet, deepest first (what creating ``path`` would make)."""
    chain = []
    p = Path(path)
    while not os.path.exists(p) and p != p.parent:  # os.path: a name too long is "missing", not an exception
        chain.append(str(p))
        p = p.parent
    return chain
