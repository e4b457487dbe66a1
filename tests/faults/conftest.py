"""Fixtures of the fault-injection suite: one finished tiny run, built once, that the tests copy or point at."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..tiny_recipe import write_recipe
from .helpers import run_nds


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``nds train`` run of the tiny recipe (results.json, best_arch.json, supernet.pt, last.ckpt)."""
    root = tmp_path_factory.mktemp("faults_finished")
    config = write_recipe(root / "tiny.yaml", output={"diagnostics": False})
    code, _, err = run_nds(["train", "--config", config, "--out", root / "run"])
    assert code == 0, err
    return root / "run"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The tiny recipe (one step of training, two random search evaluations)."""
    return write_recipe(tmp_path / "tiny.yaml", output={"diagnostics": False})


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`finished_run` that a test may damage."""
    dest = tmp_path / "run"
    shutil.copytree(finished_run, dest)
    return dest
