"""Truncated, foreign, malicious and structurally wrong checkpoints: one line each, no code run, nothing written."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from .helpers import assert_nothing_half_written, assert_one_line, run_nds, snapshot

MARKER = "malicious_reduce_ran"


class _Evil:
    """Unpickling this runs ``os.system``: weights_only loading must refuse it before that."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _payload(ckpt: Path) -> dict:
    return torch.load(ckpt, weights_only=True)


CASES: list[tuple[str, Callable[[dict, Path], Any], str]] = [
    # (id, how the file is made from the good payload and a marker path, what the line names)
    ("truncated", lambda p, m: "truncate", "corrupt or truncated"),
    ("random-bytes", lambda p, m: b"\x00\xffnot a torch file" * 50, "cannot be read"),
    ("malicious-reduce", lambda p, m: {"format": p["format"], "recipe": _Evil(str(m))}, "cannot be read"),
    ("plain-pickle-object", lambda p, m: "pickle", "cannot be read"),
    ("a-list", lambda p, m: [1, 2, 3], "not an nds-supernet/1 checkpoint"),
    ("foreign-state-dict", lambda p, m: {"state_dict": {"w": torch.zeros(2)}}, "not an nds-supernet/1 checkpoint"),
    ("without-recipe", lambda p, m: {k: v for k, v in p.items() if k != "recipe"}, "'recipe' is missing"),
    ("recipe-a-string", lambda p, m: {**p, "recipe": "spos"}, "'recipe' is a str"),
    ("recipe-with-bad-value", lambda p, m: {**p, "recipe": {**p["recipe"], "training": {"lr": -1}}}, "training.lr"),
    ("empty-model-list", lambda p, m: {**p, "models": []}, "holds no model weights"),
    ("two-models-one-supernet", lambda p, m: {**p, "models": p["models"] * 2}, "holds 2 model states"),
    ("model-not-tensors", lambda p, m: {**p, "models": [{"w": [1, 2]}]}, "models[0] is not a mapping"),
    ("missing-parameter", lambda p, m: {**p, "models": [dict(list(p["models"][0].items())[1:])]}, "is missing"),
    ("wrong-shape", lambda p, m: {**p, "models": [{k: (torch.zeros(3, 3) if i == 0 else v)
                                                   for i, (k, v) in enumerate(p["models"][0].items())}]},
     "has shape (3, 3)"),
    ("no-partition", lambda p, m: {k: v for k, v in p.items() if k != "partition"}, "'partition'"),
    ("space-not-a-mapping", lambda p, m: {**p, "search_space": ["cell/0_1"]}, "'search_space'"),
    ("another-space", lambda p, m: {**p, "search_space": {**p["search_space"], "extra": ["a", "b"]}},
     "another search space"),
]


def _make(case: Callable[[dict, Path], Any], good: Path, path: Path, marker: Path) -> Path:
    made = case(_payload(good), marker)
    if made == "truncate":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif made == "pickle":
        path.write_bytes(pickle.dumps(_Evil(str(marker))))
    elif isinstance(made, bytes):
        path.write_bytes(made)
    else:
        torch.save(made, path)
    return path


@pytest.mark.parametrize("command", ["search", "evaluate", "export"])
@pytest.mark.parametrize("make, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_checkpoint_is_one_line_and_runs_no_code(make: Callable, expected: str, command: str,
                                                       finished_run: Path, tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    ckpt = _make(make, finished_run / "supernet.pt", tmp_path / "bad.pt", marker)
    arch = tmp_path / "arch.json"
    arch.write_text((finished_run / "best_arch.json").read_text())
    (tmp_path / "archs.json").write_text(json.dumps([json.loads(arch.read_text())]))
    out = tmp_path / "out"
    argv = {"search": ["search", "--checkpoint", ckpt, "--out", out],
            "evaluate": ["evaluate", "--checkpoint", ckpt, "--archs", tmp_path / "archs.json", "--out", out / "p.json"],
            "export": ["export", "--checkpoint", ckpt, "--arch", arch, "--out", out]}[command]
    before = snapshot(tmp_path)
    code, _, err = run_nds(argv)
    assert_one_line(err, code, 2, "--checkpoint", expected)
    assert not marker.exists(), "unpickling ran the payload's code"
    assert not out.exists(), "output left behind"
    assert snapshot(tmp_path) == before
    assert_nothing_half_written(tmp_path)


def test_a_malicious_lightning_checkpoint_is_refused_on_resume(run_copy: Path, config: Path, tmp_path: Path) -> None:
    (run_copy / "results.json").unlink()
    marker = tmp_path / MARKER
    (run_copy / "lightning" / "last.ckpt").write_bytes(pickle.dumps(_Evil(str(marker))))
    before = snapshot(run_copy)
    code, _, err = run_nds(["train", "--config", config, "--out", run_copy, "--resume"])
    assert_one_line(err, code, 2, "--resume", "plain-data checkpoint")
    assert not marker.exists()
    assert snapshot(run_copy) == before
