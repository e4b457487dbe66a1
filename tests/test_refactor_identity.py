"""A change that "changes no result" gives bit-identical runs: every case of :mod:`tests.refactor_identity`.

Slow, and needs a reference: ``NDS_IDENTITY_BASE`` names a git revision of this repository (its
tree is exported with ``git archive`` and run the same way), or ``NDS_IDENTITY_REFERENCE`` names a
directory that ``python tests/refactor_identity.py generate DIR`` filled with an earlier tree::

    NDS_IDENTITY_BASE=main python -m pytest -m slow tests/test_refactor_identity.py

Every strategy, bf16, channels_last, an NNI hub space (``nds train`` and ``NasExperiment``), a
ground-truth ranking, each searcher, transfer and leaf selection run tiny; ``results.json`` (wall
times and paths removed) and every tensor of every ``*.pt`` must be equal.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from . import refactor_identity

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_case_is_bit_identical_to_the_reference(tmp_path: Path) -> None:
    base, given = os.environ.get("NDS_IDENTITY_BASE"), os.environ.get("NDS_IDENTITY_REFERENCE")
    if not base and not given:
        pytest.skip("set NDS_IDENTITY_BASE (a git revision) or NDS_IDENTITY_REFERENCE (a generated directory)")
    if given:
        reference = Path(given)
    else:
        tree = tmp_path / "base"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", str(base)], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        reference = tmp_path / "reference"
        codes = refactor_identity.generate(reference, tree=tree)
        assert not any(codes.values()), f"the reference tree failed: {codes}"
    current = tmp_path / "current"
    codes = refactor_identity.generate(current, tree=REPO)
    assert not any(codes.values()), f"this tree failed: {codes} (logs in {current})"
    report = refactor_identity.compare(reference, current, list(refactor_identity.CASES))
    different = {name: problems for name, problems in report.items() if problems}
    assert not different, f"{len(different)} of {len(report)} cases differ: {different}"
