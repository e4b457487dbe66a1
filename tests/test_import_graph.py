"""The package's import graph has no cycle and no import up a layer, judged from the modules' own imports.

How the graph is built (the rule this test enforces)
----------------------------------------------------
* Every ``.py`` file under ``nni_dynamic_supernet/`` is a node (a package is its ``__init__``).
* Every ``import`` statement in a module is an edge, wherever it stands: at the top, inside a
  function (a "late import") or under ``if TYPE_CHECKING:``. A late or type-only import still
  means one module cannot be read or tested without the other, so it cannot hide a cycle.
* Relative imports are resolved against the importing module's package.
* ``from pkg import name`` is an edge to the submodule ``pkg.name`` when that file exists, and
  to ``pkg`` (its ``__init__``) otherwise; ``import a.b.c`` is an edge to ``a.b.c``.
* Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too, but those implicit parent
  edges are not drawn: a package ``__init__`` that re-exports its own submodules is then not a
  cycle by itself. It becomes one only when a submodule imports the ``__init__`` back (``from
  . import name`` of a name defined or re-exported there), which is an explicit edge.
* Imports of other distributions (torch, nni, ...) are ignored; dynamic imports through
  ``importlib.import_module`` are not statements and are not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

import nni_dynamic_supernet

PACKAGE = "nni_dynamic_supernet"
ROOT = Path(nni_dynamic_supernet.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name of ``from <node.module> import ...`` written in ``module``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``module`` imports, by the rule in the module docstring."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in known else source)
        for target in targets:
            if target in known and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the package mapped to the package modules it imports."""
    known = _modules()
    return {module: _imports(module, path, known) for module, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> Optional[list[str]]:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> Optional[list[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_package_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in the package: " + " -> ".join(cycle or [])


def test_the_graph_sees_late_type_only_and_relative_imports() -> None:
    graph = import_graph()
    # A function-level import (the CLI imports the pipeline inside its command functions).
    assert f"{PACKAGE}.pipeline" in graph[f"{PACKAGE}.cli.run_commands"]
    # An import under ``if TYPE_CHECKING:`` (leaf selection annotates with SearchConfig).
    assert f"{PACKAGE}.recipe" in graph[f"{PACKAGE}.search.leaf_selection"]
    # ``from ..errors import ConfigError`` two levels down resolves to the top-level module.
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.search.searchers"]
    # ``from . import strategies`` is an edge to the submodule, not to the package's __init__.
    assert f"{PACKAGE}.strategies" in graph[f"{PACKAGE}.catalog"]
    assert PACKAGE not in graph[f"{PACKAGE}.catalog"]
    # ``from .updates import UpdateRule`` is an edge to the package (its __init__ re-exports the name).
    assert f"{PACKAGE}.training.updates" in graph[f"{PACKAGE}.training.engine"]


#: The layers of ``docs/architecture.rst``, bottom first: each top-level module or subpackage of the
#: package and the layer it sits in. A module may import its own layer and those below, never above.
LAYERS = [
    {"errors", "atomic_io", "output_dirs", "quiet_logs", "progress", "plots", "tensorboard_log", "strategies",
     "catalog", "arch", "components", "signals", "strict_yaml", "json_inputs", "checkpoint_check", "run_dir",
     "plot_files", "templates", "suggest"},
    {"recipe", "sections"},
    {"spaces", "data", "supernet", "ranking"},
    {"training"},
    {"search"},
    {"nni_bridge"},
    {"stages"},
    {"callbacks"},
    {"report"},
    {"pipeline", "registry", "export"},
    {"bench"},
    {"cli", "trial", "experiment_summary", "__main__"},
]


def _layer(module: str) -> Optional[int]:
    """The layer of ``module`` (by its top-level part); ``None`` for the package ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    found = [i for i, layer in enumerate(LAYERS) if parts[1] in layer]
    assert found, f"{module} is in no layer: add {parts[1]!r} to LAYERS here and to docs/architecture.rst"
    return found[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a module ``b`` from a higher layer than ``a``'s."""
    out = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            low, high = _layer(module), _layer(target)
            if low is not None and high is not None and high > low:
                out.append(f"{module} -> {target}")
    return out


def test_no_module_imports_a_higher_layer() -> None:
    upward = upward_imports(import_graph())
    assert not upward, "imports that reach up a layer (see docs/architecture.rst): " + "; ".join(upward)


def test_upward_imports_are_found() -> None:
    graph = {f"{PACKAGE}.recipe": {f"{PACKAGE}.training.partition"}, f"{PACKAGE}.search.run": {f"{PACKAGE}.recipe"}}
    assert upward_imports(graph) == [f"{PACKAGE}.recipe -> {PACKAGE}.training.partition"]


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


#: Inside ``training``: the component packages sit below the engine that composes them and the
#: builder that looks them up; they may import each other and the shared ``context`` / ``step`` /
#: ``grad_checks`` modules, never the engine or the builder.
COMPONENT_PACKAGES = ("paths", "lr", "optimizer_state", "updates", "partition")


def test_training_components_sit_below_the_engine_and_the_builder() -> None:
    graph = import_graph()
    above = {f"{PACKAGE}.training.engine", f"{PACKAGE}.training.build"}
    wrong = [f"{module} -> {target}" for module, targets in sorted(graph.items())
             if module.split(".")[2:3] and module.split(".")[1] == "training"
             and module.split(".")[2] in COMPONENT_PACKAGES for target in sorted(targets & above)]
    assert not wrong, "a training component imports the engine or the builder: " + "; ".join(wrong)


def test_registries_import_no_component() -> None:
    """The registries are below the recipe; they find the built-in components by module name, lazily."""
    assert import_graph()[f"{PACKAGE}.components"] <= {f"{PACKAGE}.errors"}


#: Lines a module may have; a longer one does several jobs and is split by job.
MAX_LINES = 500


def test_no_module_passes_the_line_limit() -> None:
    long = {module: len(path.read_text().splitlines()) for module, path in _modules().items()}
    over = sorted(f"{module} ({n} lines)" for module, n in long.items() if n > MAX_LINES)
    assert not over, f"modules over {MAX_LINES} lines: " + ", ".join(over)
