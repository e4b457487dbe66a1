"""A failed command removes the output directories it created and left empty, and nothing else."""
from __future__ import annotations

from pathlib import Path

from nni_dynamic_supernet.output_dirs import remove_empty_new_dirs


def test_only_new_empty_directories_are_removed(tmp_path: Path) -> None:
    new_empty, new_full, old_empty = tmp_path / "new_empty", tmp_path / "new_full", tmp_path / "old_empty"
    old_empty.mkdir()
    existed = {str(p): p.exists() for p in (new_empty, new_full, old_empty, tmp_path / "never_made")}
    new_empty.mkdir()
    new_full.mkdir()
    (new_full / "results.json").write_text("{}")
    remove_empty_new_dirs(existed)
    assert not new_empty.exists()
    assert (new_full / "results.json").is_file() and old_empty.is_dir()
