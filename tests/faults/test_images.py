"""A corrupt image in an ``image_folder`` dataset: one line naming the file, in the main process or a worker."""
from __future__ import annotations

from pathlib import Path

import pytest

from ..tiny_recipe import write_recipe
from .helpers import assert_nothing_half_written, assert_one_line, run_nds


def _folder(root: Path, corrupt_first: bool) -> Path:
    from PIL import Image
    for c, cls in enumerate(("a", "b")):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (8, 8), (40 * c + i, 10 * i, 99)).save(root / "train" / cls / f"{i:02d}.png")
    bad = root / "train" / "a" / ("00.png" if corrupt_first else "07.png")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)
    return bad


@pytest.mark.parametrize("corrupt_first, workers", [(True, 0), (False, 0), (False, 1)],
                         ids=["first-image", "later-image", "later-image-in-a-worker"])
def test_a_corrupt_image_is_one_line_naming_it(corrupt_first: bool, workers: int, tmp_path: Path) -> None:
    bad = _folder(tmp_path / "data", corrupt_first)
    config = write_recipe(tmp_path / "c.yaml", data={"name": "image_folder", "root": str(tmp_path / "data"),
                                                     "batch_size": 4, "eval_batch_size": 8, "train_subset": None,
                                                     "num_workers": workers, "val_fraction": 0.25},
                          training={"epochs": 1, "max_steps_per_epoch": 5, "num_threads": 1},
                          output={"diagnostics": False})
    out = tmp_path / "out"
    code, _, err = run_nds(["train", "--config", config, "--out", out])
    assert_one_line(err, code, 2, "data.root", str(bad), "cannot be read")
    assert not (out / "results.json").exists()
    assert_nothing_half_written(tmp_path)
