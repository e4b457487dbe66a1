"""Every ``>>>`` example of the package's docstrings runs and prints what it shows.

The modules are found by their source, so a new example is tested without listing it here.
Examples that need NNI's experiment machinery or a long run carry ``# doctest: +SKIP``.
"""
from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import nni_dynamic_supernet

PACKAGE = Path(nni_dynamic_supernet.__file__).resolve().parent


def _modules_with_examples() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert "nni_dynamic_supernet.templates" in MODULES and len(MODULES) >= 10


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (printed above)"
