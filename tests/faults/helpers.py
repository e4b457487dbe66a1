"""What every fault test checks, and how a command is run in a forked child that a signal can stop.

A fault test asserts four things: the exit status, one clear line on stderr (no traceback,
at most :data:`MAX_LINE` characters, no line of any output longer than that), nothing
half-written left behind (no temporary file, lock or staging folder) and earlier good
outputs byte-identical afterwards (:func:`snapshot`).
"""
from __future__ import annotations

import io
import multiprocessing
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Callable, Optional, Sequence

from nni_dynamic_supernet import cli

#: The longest line any ``nds`` output may have (the issue's bound).
MAX_LINE = 1000
#: What a half-finished write or an unreleased claim leaves behind.
LEFTOVER_PATTERNS = ("*.tmp", "nds.lock", ".nds-plot-*")


def run_nds(argv: Sequence[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_short_lines(*texts: str) -> None:
    """No line of any output is longer than :data:`MAX_LINE` characters."""
    for text in texts:
        longest = max((len(line) for line in text.splitlines()), default=0)
        assert longest <= MAX_LINE, f"a line of {longest} characters: {text[:300]}..."


def assert_one_line(err: str, code: int, expected: int, *must_contain: str, prefix: str = "nds: ") -> str:
    """``code`` is ``expected`` and ``err`` is one line (no traceback) naming ``must_contain``."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == expected, f"exit status {code}, not {expected}; stderr:\n{err[-2000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err[-3000:]}"
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err
    assert_short_lines(err)
    for text in must_contain:
        assert text in lines[0], f"{text!r} not in: {lines[0]}"
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes): compared before and after a fault."""
    root = Path(root)
    if root.is_file():
        return {root.name: root.read_bytes()}
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_nothing_half_written(*roots: Path) -> None:
    """No temporary file, lock file or plot staging folder under ``roots``."""
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for pattern in LEFTOVER_PATTERNS:
            left = sorted(str(p) for p in root.rglob(pattern))
            assert not left, f"left behind: {left}"


def _child(target: Callable[[], int], err_path: str, out_path: str) -> None:  # pragma: no cover (forked)
    with open(err_path, "w") as err, open(out_path, "w") as out:
        sys.stderr, sys.stdout = err, out
        try:
            code = int(target() or 0)
        except SystemExit as exc:
            code = int(exc.code or 0)
        err.flush()
        out.flush()
    os._exit(code)


def in_child(target: Callable[[], int], tmp: Path, timeout: float = 300) -> tuple[Optional[int], str, str]:
    """Run ``target`` in a forked child; (its exit code, or ``-signal`` when a signal ended it, stderr, stdout).

    Forking keeps the imports of this process, so a child costs no interpreter start.
    """
    err_path, out_path = tmp / "child.stderr", tmp / "child.stdout"
    child = multiprocessing.get_context("fork").Process(target=_child, args=(target, str(err_path), str(out_path)))
    child.start()
    child.join(timeout=timeout)
    if child.is_alive():  # pragma: no cover (a hang is a failure, never a stuck suite)
        child.kill()
        child.join()
        raise AssertionError("the child did not finish in time")
    err = err_path.read_text() if err_path.exists() else ""
    out = out_path.read_text() if out_path.exists() else ""
    err_path.unlink(missing_ok=True)
    out_path.unlink(missing_ok=True)
    return child.exitcode, err, out
