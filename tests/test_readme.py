"""The README stays short and cannot drift from the package: its tables, images and every command it shows."""
from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from nni_dynamic_supernet.cli import build_parser, main
from nni_dynamic_supernet.registry import list_strategies, strategy_table_rst

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.rst"
#: The README is an entry point; everything longer belongs in the documentation site under docs/.
MAX_LINES = 200


def _literal_blocks(text: str) -> list[str]:
    """The indented blocks that follow a ``::`` line, dedented."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".."):
            continue
        block, j = [], i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith("    ")):
            block.append(lines[j][4:])
            j += 1
        blocks.append("\n".join(block).strip("\n"))
    return blocks


def _commands(prefix: str) -> list[str]:
    found = []
    for block in _literal_blocks(README.read_text()):
        found += [line.strip() for line in block.splitlines() if line.strip().startswith(prefix)]
    return found


def _python_example() -> str:
    blocks = [b for b in _literal_blocks(README.read_text()) if "NasExperiment(" in b]
    assert len(blocks) == 1, "the README shows one Python API example"
    return blocks[0]


def test_readme_is_at_most_200_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, f"README.rst has {lines} lines; move reference material to docs/"


@pytest.mark.parametrize("name", ["README.rst", "CHANGELOG.rst"])
def test_is_plain_restructuredtext(name: str) -> None:
    # Both are read outside Sphinx (the wheel's description, the repository's front page): no Sphinx roles.
    import io

    docutils_core = pytest.importorskip("docutils.core")
    warnings = io.StringIO()
    docutils_core.publish_doctree((REPO / name).read_text(), settings_overrides={
        "warning_stream": warnings, "report_level": 2, "halt_level": 5})
    assert not warnings.getvalue(), warnings.getvalue()


def test_strategy_table_is_the_registrys() -> None:
    # Regenerate with `nds list --rst` after adding a preset.
    assert strategy_table_rst() in README.read_text()
    rows = {m.group(1) for m in re.finditer(r"^``([a-z0-9_]+)``\s", README.read_text(), re.M)}
    assert set(list_strategies()) <= rows


def test_every_image_of_the_readme_exists() -> None:
    images = re.findall(r"^\.\. image:: (\S+)", README.read_text(), re.M)
    assert "docs/webui_spos_calr.png" in images
    for image in images:
        assert (README.parent / image).is_file(), image


def test_every_docs_page_the_readme_names_exists() -> None:
    pages = re.findall(r"``(docs/[\w/.-]+\.rst)``", README.read_text())
    assert len(pages) >= 10
    for page in pages:
        assert (REPO / page).is_file(), page


def test_install_commands_name_extras_that_exist() -> None:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installs = _commands("pip install")
    assert installs, "the README shows its install command"
    for command in installs:
        for extra in re.findall(r"\.\[([\w,]+)\]", command):
            assert set(extra.split(",")) <= extras, command
    assert "pip install 'torch==2.14.1' 'torchvision==0.29.1' -e '.[test]'" in installs


def test_nnictl_commands_name_examples_that_exist() -> None:
    commands = _commands("nnictl create")
    assert commands
    for command in commands:
        argv = shlex.split(command)
        assert (REPO / argv[argv.index("--config") + 1]).is_file(), command


def test_nds_commands_parse() -> None:
    commands = _commands("nds ")
    assert commands
    parser = build_parser()
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])  # a usage error exits; a passing parse returns


def test_test_command_is_the_ci_one() -> None:
    assert _commands("python -m pytest") == ["python -m pytest -q"]
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text()


def test_smoke_run_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's one-minute smoke run, as shown, into a temporary folder.
    (command,) = [c for c in _commands("nds train") if "--out runs/smoke" in c]
    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "smoke")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    assert (tmp_path / "smoke" / "results.json").is_file()
    assert (tmp_path / "smoke" / "best_arch.json").is_file()


def test_python_example_builds_its_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every line but the run itself: the imports, the data, the space, the evaluator and the strategy.
    code = _python_example()
    assert "exp.run()" in code
    setup = code.split("exp.run()")[0]
    monkeypatch.setenv("HOME", str(tmp_path))  # NNI's experiment folder (~/nni-experiments) goes here
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(setup, "README.rst", "exec"), scope)  # noqa: S102 - the README's own example
    assert type(scope["exp"]).__name__ == "NasExperiment"


@pytest.mark.slow
def test_python_example_runs(tmp_path: Path) -> None:
    # The whole example, as a user runs it (about two minutes on one core).
    import os
    import subprocess
    script = tmp_path / "example.py"
    script.write_text(_python_example())
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HOME": str(tmp_path)}, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cell/" in done.stdout
