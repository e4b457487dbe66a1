"""Sphinx extension of the nni-dynamic-supernet docs: pages and tables generated from the package.

* ``.. nds-generated:: NAME`` inserts a generated block: ``config-reference`` (every recipe
  field), ``cli-reference`` (every ``nds`` command's help), ``strategy-table`` or
  ``hub-space-table``.
* On ``builder-inited`` one page per registered strategy preset and per registered space is
  written under ``docs/_autogen/`` (not in git), so a new preset or space gets its page
  without editing the docs.

The reStructuredText itself comes from :mod:`nds_reference`, which needs no Sphinx.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

import nds_reference

GENERATORS = {
    "config-reference": nds_reference.config_reference_rst,
    "strategy-table": nds_reference.strategy_table_rst,
    "hub-space-table": nds_reference.hub_space_table_rst,
    "cli-reference": nds_reference.cli_reference_rst,
}
#: Blocks that hold section titles and are parsed as part of the page's section tree.
WITH_TITLES = {"config-reference", "cli-reference"}


class GeneratedBlock(SphinxDirective):
    """``.. nds-generated:: config-reference``: reStructuredText generated from the package, parsed in place."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        if kind not in GENERATORS:
            raise self.error(f"nds-generated: unknown block {kind!r}; known: {', '.join(GENERATORS)}")
        text = GENERATORS[kind]()
        content = StringList(text.splitlines(), source=f"<generated {kind}>")
        if kind in WITH_TITLES:
            holder = nodes.section()
            nested_parse_with_titles(self.state, content, holder)
            return list(holder.children)
        container = nodes.container()
        self.state.nested_parse(content, self.content_offset, container)
        return [container]


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their timestamps, so an incremental build does not re-read every page.
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_pages(app: Sphinx) -> None:
    """One page per strategy preset and per space under ``_autogen/``; pages of removed entries go."""
    from nni_dynamic_supernet.registry import list_spaces, list_strategies
    root = Path(app.srcdir) / "_autogen"
    for folder, names, render in (("strategies", list_strategies(), nds_reference.strategy_page_rst),
                                  ("spaces", list_spaces(), nds_reference.space_page_rst)):
        target = root / folder
        wanted = {f"{name}.rst": render(name) for name in names}
        if target.is_dir():
            for stale in target.glob("*.rst"):
                if stale.name not in wanted:
                    stale.unlink()
        for filename, text in wanted.items():
            _write_if_changed(target / filename, text)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("nds-generated", GeneratedBlock)
    app.connect("builder-inited", write_pages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["setup", "write_pages", "GeneratedBlock"]
