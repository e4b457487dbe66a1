"""Every file the code, the docs and the configs point at is in the repository.

A reference is a path ending in .md, .rst, .py, .yaml, .yml or .json in a doc or config, or in a
comment or string of a Python file. It is found when a repository file has that path (from the
root, or ending with it, as package-relative paths are written). Names of files that a run writes,
or that stand for the user's own files, and files of other projects (the papers' official code, NNI) are listed below
with the reason; the tests' own temporary files are not scanned.

Nor may any repository file cite the developers' private design documents (the methods
specification, the NNI notes, the architecture and embedded-benchmark notes), which users never
see: what a reader needs from them belongs in ``docs/`` or is the paper or its official code.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import tokenize
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:md|rst|py|yaml|yml|json))\b")
SCANNED = {".py", ".rst", ".yaml", ".yml", ".json", ".cfg", ".toml", ".txt", ".md"}

#: Files a run writes (or the user names) at run time: never in the repository.
WRITTEN_AT_RUN_TIME = {
    "results.json", "best_arch.json", "search.json", "compare.json", "compare.md", "arch.json", "table.json",
    "shifting.json", "standalone_cache.json", "predictions.json", "rank.json",
    "results_gpu.json", "benchmarks/results_gpu.json", "recipe.yml", "sweep.json", "sweep.md", "v2.json", "bench_row.json",
    "rescore.json", "rescore.md", "ranking.json", "run.json", "verdict_row.json", "summary.json",
    "recipe.yaml", "hparams.yaml",
}
#: Placeholders for the user's files in usage lines (``nds plot RESULTS.json``).
PLACEHOLDERS = {"RESULTS.json", "ARCHS.json", "PRED.json", "GT.json", "SAME.yaml", "my_table.json", "PREDICTIONS.json",
                "TABLE.json",
                "benchmarks/verdicts/NAME.yaml", "NAME.result.json"}
#: Files of other projects: the papers' official code (cited where a default follows it) and NNI's nnictl.
OFFICIAL_CODE = {"train_fairnas.py", "successive_halving.py", "nasbench201/train_panda_201.py", "nnictl.py",
                 "train_search.py",  # skhu101/GM-NAS: WS-GM/nasbench201/train_search.py
                 "src/Supernet/train.py", "src/Search/search.py"}  # megvii-model/SinglePathOneShot


def _repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    return [p for p in listed if (REPO / p).is_file()]


def _texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of what may cite a file: every line of a doc or config; comments and strings of Python."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return list(enumerate(text.splitlines(), 1))
    out = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            out.extend((token.start[0] + i, part) for i, part in enumerate(token.string.splitlines()))
    return out


def dangling_references(files: list[str], root: Path = REPO) -> list[str]:
    """``path:line: reference`` for every reference in ``root``'s ``files`` to a file that is not among them."""
    known = set(files)
    allowed = WRITTEN_AT_RUN_TIME | PLACEHOLDERS | OFFICIAL_CODE
    found = []
    for rel in files:
        path = root / rel
        if path.suffix not in SCANNED or rel.startswith("tests/") or path.stat().st_size > 2_000_000:
            continue
        for line, text in _texts(path):
            for match in REFERENCE.finditer(text):
                ref = match.group(1)
                name = ref.split("/")[-1] if ref.split("/")[0].isupper() else ref  # DIR/x.json: a placeholder dir
                if name in allowed or ref in known or any(k.endswith("/" + ref) for k in known):
                    continue
                if os.path.normpath(os.path.join(os.path.dirname(rel), ref)) in known:  # ../CHANGELOG.rst
                    continue
                found.append(f"{rel}:{line}: {ref}")
    return found


def test_no_reference_to_a_file_that_is_not_in_the_repository() -> None:
    dangling = dangling_references(_repository_files())
    assert not dangling, "references to files not in the repository:\n" + "\n".join(dangling)


def test_the_scan_finds_a_dangling_reference(tmp_path: Path) -> None:
    # The scan itself must be able to fail: a doc and a Python comment citing missing files are reported,
    # a Python attribute (args.rst) and a present file are not.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.rst").write_text("See ``docs/b.rst`` and DESIGN_NOTES.md.\n")
    (tmp_path / "docs" / "b.rst").write_text("ok\n")
    (tmp_path / "m.py").write_text("x = args.rst  # see SPEC.md\n")
    found = dangling_references(["docs/a.rst", "docs/b.rst", "m.py"], root=tmp_path)
    assert found == ["docs/a.rst:1: DESIGN_NOTES.md", "m.py:1: SPEC.md"]


#: Citations of the developers' private design documents (and their folder), which users never see.
PRIVATE_DOC = re.compile(r"\bMETHODS(?:\.md\b|\s*§|\s+section\b)|\bNNI_NOTES\b|\bARCHITECTURE\.md\b"
                         r"|\bEMBEDDED_BENCHMARK\b|/work/shared\b")
#: File types that can carry such a citation.
PRIVATE_DOC_SCANNED = {".py", ".rst", ".yaml", ".yml", ".cfg", ".toml", ".txt", ".md", ".sh"}


def private_doc_citations(files: list[str], root: Path = REPO) -> list[str]:
    """``path:line: text`` for every line of ``root``'s ``files`` that cites a private design document.

    This module is left out by its exact path: it has to spell the patterns.
    """
    this_file = Path(__file__).resolve()
    found = []
    for rel in files:
        path = root / rel
        if path.suffix not in PRIVATE_DOC_SCANNED or path.resolve() == this_file:
            continue
        for line, text in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if PRIVATE_DOC.search(text):
                found.append(f"{rel}:{line}: {text.strip()}")
    return found


def test_no_citation_of_a_private_design_document() -> None:
    cited = private_doc_citations(_repository_files())
    assert not cited, ("citations of private design documents (state the fact, or point to docs/ or the "
                       "paper instead):\n" + "\n".join(cited))


def test_the_scan_finds_a_private_doc_citation(tmp_path: Path) -> None:
    # The scan must be able to fail, in every scanned type; words that merely contain the names must not.
    (tmp_path / "a.py").write_text("x = 1\n# as METHODS §2(b) says\n")
    (tmp_path / "b.rst").write_text("See NNI_NOTES section 5.\n")
    (tmp_path / "c.yaml").write_text("# ARCHITECTURE.md\n")
    (tmp_path / "d.sh").write_text("cat /work/shared/EMBEDDED_BENCHMARK.md\n")
    (tmp_path / "e.txt").write_text("HTTP_METHODS = ['GET']; docs/architecture.rst\n")
    found = private_doc_citations(["a.py", "b.rst", "c.yaml", "d.sh", "e.txt"], root=tmp_path)
    assert [f.split(": ")[0] for f in found] == ["a.py:2", "b.rst:1", "c.yaml:1", "d.sh:1"]
