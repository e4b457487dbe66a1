"""Sphinx configuration of the nni-dynamic-supernet documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors). The config
reference and the per-strategy and per-space pages are generated from the package at build
time by ``docs/_ext/nds_docs.py``, so they cannot drift from the code.
"""
from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the checkout's package, also when it is not installed
sys.path.insert(0, str(DOCS / "_ext"))

import nni_dynamic_supernet  # noqa: E402

project = "nni-dynamic-supernet"
author = "The nni-dynamic-supernet maintainers"
copyright = "2026, " + author
release = nni_dynamic_supernet.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "nds_docs",
]

# Pages written at build time (nds_docs) and fragments only ever included by another page.
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc renders the documented types; signatures stay readable
autodoc_member_order = "bysource"
# Heavy optional imports are real dependencies here; nothing is mocked, so a page that imports
# fails the build instead of rendering an empty stub.

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

html_theme = "alabaster"
html_theme_options = {"description": "One-shot NAS supernets that rank subnets correctly, for NNI 3.0",
                      "page_width": "1180px", "sidebar_width": "250px"}
html_static_path: list[str] = []
html_show_sourcelink = False
