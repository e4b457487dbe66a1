"""The check every bad-input test shares: one error line that names the field and the fix, exit status 2,
and no output left behind."""
from __future__ import annotations

from pathlib import Path


def assert_one_clear_error_line(err: str, prefix: str, field: str, code: int, out: Path) -> None:
    """Fail unless ``err`` is one line ``<prefix><field ...>: <fix>``, ``code`` is 2 and ``out`` does not exist."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith(prefix)
    assert field in lines[0], f"the line does not name {field!r}: {lines[0]}"
    assert ":" in lines[0][len(prefix):], "the line must say how to fix it"
    assert code == 2, f"exit status {code}, not 2"
    assert not out.exists(), f"output left behind: {sorted(out.rglob('*')) if out.is_dir() else out}"
