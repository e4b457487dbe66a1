"""Bad input to the nnictl trial entry point (``python -m nni_dynamic_supernet.trial``): one line naming
the argument or field and the fix, exit status 2, and no output directory left behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from nni_dynamic_supernet import trial

from .error_lines import assert_one_clear_error_line
from .tiny_recipe import write_recipe

CASES = [
    # (id, argv, what the line must name); {tmp} is the folder holding tiny.yaml
    ("config-missing", ["--out", "{out}"], "--config"),
    ("config-without-value", ["--out", "{out}", "--config"], "--config"),
    ("unknown-argument", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--bogus", "1"], "--bogus"),
    ("set-without-value", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--set"], "--set"),
    ("config-not-found", ["--config", "{tmp}/none.yaml", "--out", "{out}"], "--config"),
    ("set-without-equals", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--set", "training.epochs"], "--set"),
    ("space-kwarg-negative", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--set", "space.kwargs.channels=-3"],
     "space.kwargs.channels"),
    ("set-typo-gets-a-suggestion", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--set", "trainng.epochs=1"],
     "did you mean `training.epochs`"),
    ("logger-not-installed", ["--config", "{tmp}/tiny.yaml", "--out", "{out}", "--set", "output.logger=mlflow"],
     "pip install mlflow"),
]


def _run(argv: list[str]) -> int:
    """``trial.main``'s exit status, whether it returns it or exits with it (argparse errors)."""
    try:
        return trial.main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("argv, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_trial_input_gives_one_clear_line(argv: list, field: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    write_recipe(tmp_path / "tiny.yaml")
    out = tmp_path / "out"
    filled = [a.format(tmp=tmp_path, out=out) for a in argv]
    capsys.readouterr()
    code = _run(filled)
    assert_one_clear_error_line(capsys.readouterr().err, "trial: error: ", field, code, out)


def test_help_still_exits_cleanly(capsys: pytest.CaptureFixture) -> None:
    # Only errors are shortened: --help prints the full usage and exits 0.
    assert _run(["--help"]) == 0
    assert "--config" in capsys.readouterr().out
