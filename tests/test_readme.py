"""The README's tour cannot drift from the package: tables match the registry, images exist."""
from __future__ import annotations

import re
from pathlib import Path

from nni_dynamic_supernet.registry import hub_space_table_rst, strategy_table_rst
from nni_dynamic_supernet.registry import list_spaces, list_strategies

README = Path(__file__).resolve().parents[1] / "README.rst"


def test_strategy_table_is_the_registrys() -> None:
    # Regenerate with `nds list --rst` after adding a preset.
    assert strategy_table_rst() in README.read_text()


def test_hub_space_table_is_the_tests_list() -> None:
    # The rows come from spaces.nni_hub.HUB_SPACES, the list tests/test_nni_hub_spaces.py runs.
    assert hub_space_table_rst() in README.read_text()


def test_every_strategy_and_space_is_in_a_table_row() -> None:
    rows = {m.group(1) for m in re.finditer(r"^``([a-z0-9_]+)``\s", README.read_text(), re.M)}
    assert set(list_strategies()) <= rows
    assert set(list_spaces()) <= rows


def test_every_image_of_the_readme_exists() -> None:
    images = re.findall(r"^\.\. image:: (\S+)", README.read_text(), re.M)
    assert "docs/webui_spos_calr.png" in images
    for image in images:
        assert (README.parent / image).is_file(), image


def test_every_example_is_listed() -> None:
    text = README.read_text()
    for example in sorted((README.parent / "examples").glob("*.yml")):
        assert f"``examples/{example.name}``" in text, example.name
