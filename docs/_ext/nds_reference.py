"""reStructuredText generated from the package: the config reference, strategy and space pages.

Everything here reads the code at documentation build time (``docs/_ext/nds_docs.py`` calls
it), so the pages list exactly what the installed package accepts. The module needs the
package, not Sphinx, so the tests can check its output too.

Where the package keeps its tables may change (allowed values moving into component
registries, the embedded tables into ``ranking/``); every such read goes through one of the
``_source_*`` functions or :func:`allowed_values` below, the only places to repoint.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from typing import Any, Iterable, Optional

__all__ = ["allowed_values", "field_rule", "config_reference_rst", "strategy_page_rst", "space_page_rst",
           "strategy_table_rst", "hub_space_table_rst", "recipe_fields", "cli_reference_rst"]


# --------------------------------------------------------------------------- the package's tables
def _source_choices() -> dict[str, tuple]:
    """Dotted key -> allowed values, as the recipe's validation declares them."""
    from nni_dynamic_supernet import recipe
    accessor = getattr(recipe, "allowed_values", None)
    if callable(accessor):  # a registry-backed accessor, once the recipe offers one
        return {key: tuple(accessor(key)) for key in _all_keys() if accessor(key)}
    return dict(recipe._CHOICES)


def _source_aliases() -> dict[str, dict[str, str]]:
    """Dotted key -> {other accepted name: the value it stands for} (Lightning's precision names)."""
    from nni_dynamic_supernet import recipe
    return dict(getattr(recipe, "VALUE_ALIASES", {}))


def _source_tables() -> list[str]:
    """Names of the embedded ground-truth tables."""
    try:
        from nni_dynamic_supernet.ranking.tables import TABLES  # type: ignore[import-not-found]
    except ImportError:
        from nni_dynamic_supernet.bench.tables import TABLES
    return list(TABLES)


def _source_datasets() -> tuple[str, ...]:
    from nni_dynamic_supernet.data import KNOWN_DATASETS
    return tuple(KNOWN_DATASETS)


def _source_hub_rows() -> list[tuple]:
    from nni_dynamic_supernet.registry import list_strategies
    from nni_dynamic_supernet.spaces.nni_hub import hub_space_rows
    return [tuple(row) for row in hub_space_rows(len(list_strategies()))]


# --------------------------------------------------------------------------- recipe fields
@dataclasses.dataclass(frozen=True)
class Field:
    """One recipe field as the reference shows it."""

    dotted: str
    section: str
    hint: Any
    default: Any
    comment: str


def _sections() -> dict[str, type]:
    from nni_dynamic_supernet import recipe
    return dict(recipe._SECTIONS)


def _all_keys() -> list[str]:
    return [f.dotted for f in recipe_fields()]


def recipe_fields() -> list[Field]:
    """Every field of a recipe, top-level keys first, then each section in recipe order."""
    from nni_dynamic_supernet.recipe import Recipe
    out = []
    top_hints = typing.get_type_hints(Recipe)
    comments = _field_comments(Recipe, "")
    for f in dataclasses.fields(Recipe):
        if f.name in _sections():
            continue
        out.append(Field(f.name, "", top_hints[f.name], _default(f), comments.get(f.name, "")))
    for section, cls in _sections().items():
        hints = typing.get_type_hints(cls)
        comments = _field_comments(cls, section)
        for f in dataclasses.fields(cls):
            out.append(Field(f"{section}.{f.name}", section, hints[f.name], _default(f), comments.get(f.name, "")))
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _field_comments(cls: type, section: str) -> dict[str, str]:
    """The source comments of each field: the comment lines right above it and the one on its line."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    class_node = ast.parse(source).body[0]
    assert isinstance(class_node, ast.ClassDef)
    out = {}
    for node in class_node.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        parts = []
        row = node.lineno - 1
        above = []
        while row >= 1 and lines[row - 1].strip().startswith("#"):
            above.insert(0, comments.get(row, ""))
            row -= 1
        # A comment block above a run of fields heads the group ("# components"); it describes the
        # field only when the field stands alone under it (a blank line, a comment or the end follows).
        after = node.end_lineno or node.lineno
        alone = after >= len(lines) or not lines[after].strip() or lines[after].strip().startswith("#")
        dotted = f"{section}.{node.target.id}" if section else node.target.id
        explains_values = any(f"{value}:" in " ".join(above) for value in allowed_values(dotted) or ())
        if alone or explains_values:
            parts.extend(above)
        trailing = comments.get(node.end_lineno or node.lineno)
        if trailing:
            parts.append(trailing)
        text = re.sub(r"\bNone\b", "null", " ".join(p for p in parts if p))  # the YAML spelling
        if text:
            out[node.target.id] = text
    return out


# --------------------------------------------------------------------------- allowed values and rules
def _base_type(hint: Any) -> Any:
    if typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0] if len(inner) == 1 else hint
    return hint


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)


def allowed_values(dotted: str) -> Optional[tuple]:
    """The values a recipe field accepts, when it accepts a fixed set of names; else ``None``.

    Read from the package at call time: the recipe's declared choices, the registries
    (strategies, spaces), the known datasets, and for any other string field what the
    recipe's own validation says when given an invalid name.
    """
    from nni_dynamic_supernet.registry import list_spaces, list_strategies
    if dotted == "strategy":
        return tuple(list_strategies())
    if dotted == "space.name":
        return tuple(list_spaces())
    if dotted == "data.name":
        return _source_datasets()
    choices = _source_choices()
    if dotted in choices:
        return tuple(choices[dotted])
    return None


_PROBE = "__not_a_value__"


def _contexts() -> Iterable[dict]:
    """Recipes in which each field's checks run: the default, every preset and every searcher."""
    from nni_dynamic_supernet.registry import list_strategies
    yield {}
    for name in list_strategies():
        yield {"strategy": name}
    for searcher in allowed_values("search.searcher") or ():
        yield {"search.searcher": searcher}


def field_rule(field: Field) -> Optional[str]:
    """What the recipe's validation says about an invalid value of ``field``, or ``None``.

    The probe is a name no field accepts for string fields and ``-1`` for numbers, set in turn
    in the default recipe, under each preset and under each searcher (some checks run only
    there); the first :class:`~nni_dynamic_supernet.errors.ConfigError` that names the field is
    its rule. A number field that accepts ``-1`` everywhere has no rule.
    """
    from nni_dynamic_supernet.errors import ConfigError
    from nni_dynamic_supernet.recipe import Recipe
    base = typing.get_origin(_base_type(field.hint)) or _base_type(field.hint)
    probes: dict[Any, Any] = {str: _PROBE, int: -1, float: -1, list: [_PROBE], dict: {_PROBE: 1}}
    if base not in probes:
        return None
    for context in _contexts():
        try:
            Recipe.from_dict({}, {**context, field.dotted: probes[base]})
        except ConfigError as exc:
            # A mapping's check names the offending key (training.sampling_constraint.x); a check of the
            # mapping as a whole ("needs search.searcher: ...") says when, not what, so it is skipped.
            if exc.field.startswith(field.dotted + ".") or (exc.field == field.dotted and base is not dict):
                return exc.fix
        except Exception:  # noqa: BLE001 - a context that cannot hold the probe says nothing about the field
            continue
    return None


# --------------------------------------------------------------------------- formatting
def _literal(value: Any) -> str:
    """A value as YAML writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in value.items()) + "}" if value else "{}"
    return str(value)


def _type_name(hint: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "mapping", list: "list"}
    base = _base_type(hint)
    origin = typing.get_origin(base) or base
    name = names.get(origin, getattr(origin, "__name__", str(origin)))
    return f"{name} or null" if _optional(hint) else name


def _preset_note(dotted: str) -> str:
    from nni_dynamic_supernet.registry import get_preset, list_strategies
    from nni_dynamic_supernet.strategies import COMPONENT_DEFAULTS
    if dotted in COMPONENT_DEFAULTS:
        return "Every strategy preset sets it (the preset's value replaces this default); see :doc:`/strategies`."
    setters = [(name, get_preset(name).settings[dotted]) for name in list_strategies()
               if dotted in get_preset(name).settings]
    if not setters:
        return ""
    listed = ", ".join(f":doc:`{name} </_autogen/strategies/{name}>` (``{_literal(v)}``)" for name, v in setters)
    return f"Set by the presets {listed}; a value you set wins."


def _escape(text: str) -> str:
    """Source comments as plain reST text: stray markup characters cannot break the page."""
    return text.replace("\\", "\\\\").replace("*", r"\*").replace("|", r"\|").replace("_ ", r"\_ ")


def _allowed_cell(field: Field) -> str:
    values = allowed_values(field.dotted)
    null = ", ``null``" if _optional(field.hint) else ""
    if values:
        aliases = _source_aliases().get(field.dotted, {})
        also = ("; also accepted: " + ", ".join(f"``{a}`` (= ``{v}``)" for a, v in aliases.items())) if aliases else ""
        return ", ".join(f"``{v}``" for v in values) + null + also
    if _base_type(field.hint) is bool:
        return "``true``, ``false``" + null
    if field.dotted == "ranking.ground_truth":
        tables = ", ".join(f"``{name}``" for name in _source_tables())
        return (f"``auto``, an embedded table ({tables}), ``nasbench201`` (NNI's NAS-Bench-201 database), "
                "the path of a ground-truth JSON table, or ``null``")
    if field.dotted == "search.transfer_to":
        return "a ``data`` mapping (missing fields come from ``data``), with ``search.searcher: shifted_evolution``"
    if field.dotted == "space.kwargs":
        return "the keyword arguments of the space (checked by the space when it is built)"
    rule = field_rule(field)
    if rule is None:
        return "any " + _type_name(field.hint)
    if rule.startswith("allowed values: "):
        # A list of names, as the validation spells it: "allowed values: reset, persistent".
        parts = rule[len("allowed values: "):].split(", ")
        return ", ".join(f"``{p}``" if p.isidentifier() else _escape(p) for p in parts)
    if rule.startswith("allowed keys: "):
        return "a mapping with the keys " + ", ".join(f"``{k}``" for k in rule[len("allowed keys: "):].split(", "))
    # The validation's own words, less the verb: "must be in [0, 1]" -> "in [0, 1]".
    return _escape(rule[len("must be "):] if rule.startswith("must be ") else rule)


def config_reference_rst() -> str:
    """The config reference: every recipe field with its type, default and allowed values.

    One table per section (field, type, default, allowed) and one ``confval`` entry per field,
    which the tables and other pages link to with ``:confval:`training.lr```.
    """
    from nni_dynamic_supernet.recipe import Recipe
    fields = recipe_fields()
    groups: dict[str, list[Field]] = {}
    for f in fields:
        groups.setdefault(f.section, []).append(f)
    out: list[str] = []
    for section, members in groups.items():
        title = "Top-level keys" if not section else f"``{section}``"
        out += [title, "-" * len(title), ""]
        doc = inspect.getdoc(Recipe if not section else _sections()[section]) or ""
        if doc:
            out += [_first_paragraphs(doc), ""]
        out += [".. list-table::", "   :header-rows: 1", "   :widths: 26 14 14 46", "",
                "   * - field", "     - type", "     - default", "     - allowed"]
        rows = [(f, _allowed_cell(f)) for f in members]
        for f, allowed in rows:
            out += [f"   * - :confval:`{f.dotted}`", f"     - {_type_name(f.hint)}",
                    f"     - ``{_literal(f.default)}``", f"     - {allowed}"]
        out.append("")
        for f, allowed in rows:
            out += [f".. confval:: {f.dotted}", f"   :type: {_type_name(f.hint)}",
                    f"   :default: ``{_literal(f.default)}``", "", f"   Allowed: {allowed}", ""]
            if f.comment:
                out += [f"   {_escape(f.comment)}", ""]
            note = _preset_note(f.dotted)
            if note:
                out += [f"   {note}", ""]
    return "\n".join(out) + "\n"


def _first_paragraphs(doc: str) -> str:
    """A class docstring up to its numpydoc sections, as plain paragraphs."""
    kept = []
    for line in doc.splitlines():
        if line.strip() in ("Parameters", "Attributes", "Examples", "Notes") or set(line.strip()) == {"-"}:
            break
        kept.append(line)
    return "\n".join(kept).strip()


# --------------------------------------------------------------------------- strategies and spaces
def _rst_table(header: tuple, rows: list) -> str:
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(row: tuple) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()

    return "\n".join([rule, line(header), rule, *map(line, rows), rule])


def strategy_table_rst() -> str:
    """Every registered strategy preset with its one-line purpose and paper, linked to its page."""
    from nni_dynamic_supernet.registry import get_preset, list_strategies
    rows = [(f":doc:`{n} <_autogen/strategies/{n}>`", get_preset(n).summary, get_preset(n).paper)
            for n in list_strategies()]
    return _rst_table(("strategy", "purpose", "paper"), rows)


def hub_space_table_rst() -> str:
    """NNI 3.0's hub spaces the tests train with every strategy."""
    return _rst_table(("NNI hub space", "tested with", "searchable decisions", "strategies"), _source_hub_rows())


def strategy_page_rst(name: str) -> str:
    """The page of one strategy preset: purpose, paper, how to select it and every setting it makes."""
    from nni_dynamic_supernet.recipe import Recipe
    from nni_dynamic_supernet.registry import get_preset
    preset = get_preset(name)
    defaults = {f.dotted: f.default for f in recipe_fields()}
    title = f"``{name}``"
    out = [title, "=" * len(title), "", f"{preset.summary[0].upper()}{preset.summary[1:]}.", "",
           f"**Paper:** {preset.paper}.", "", "Select it", "---------", "",
           "In a recipe or an nnictl search space, ``strategy: " + name + "``; on the command line::", "",
           f"    nds train --out runs/{name} --set strategy={name}", "", "From Python, for NNI's ``NasExperiment``::",
           "", "    from nni_dynamic_supernet import create_strategy",
           f'    strategy = create_strategy("{name}")', "",
           "Settings", "--------", "",
           "What the preset sets; any of them can be overridden like every other field. Fields it does "
           "not list keep the :doc:`recipe defaults </config_reference>`.", "",
           ".. list-table::", "   :header-rows: 1", "   :widths: 40 22 22 16", "",
           "   * - field", "     - this preset", "     - recipe default", "     - differs"]
    for dotted, value in sorted(preset.settings.items()):
        default = defaults.get(dotted, dataclasses.MISSING)
        out += [f"   * - :confval:`{dotted}`", f"     - ``{_literal(value)}``", f"     - ``{_literal(default)}``",
                f"     - {'yes' if value != default else ''}"]
    Recipe.from_dict({"strategy": name})  # the page is only written for a preset that validates
    return "\n".join(out) + "\n"


def space_page_rst(name: str) -> str:
    """The page of one registered search space: its factory's documentation."""
    from nni_dynamic_supernet.catalog import _loaders, SPACE_GROUP  # noqa: PLC2701 - the loader names the object
    factory = _loaders(SPACE_GROUP)[name]()
    target = f"{factory.__module__}.{factory.__qualname__}"
    title = f"``{name}``"
    return "\n".join([
        title, "=" * len(title), "",
        f"In a recipe, ``space: {{name: {name}, kwargs: {{...}}}}``; from Python, "
        f'``create_space("{name}", **kwargs)``. Every space also takes ``num_classes``, ``in_channels`` '
        "and ``input_size``, which ``nds`` fills from the data.", "",
        f".. autofunction:: {target}", "",
    ])


# --------------------------------------------------------------------------- the nds command
def _subparsers(parser: Any) -> dict:
    import argparse
    for action in parser._actions:  # argparse keeps sub-commands only on this private action
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference_rst() -> str:
    """``nds --help`` and the help of every sub-command, as the installed parser prints them."""
    import os
    from nni_dynamic_supernet.cli import build_parser
    os.environ.setdefault("COLUMNS", "100")  # argparse wraps at the terminal width; fix it for the page
    parser = build_parser()
    out: list[str] = []

    def block(title: str, help_text: str) -> None:
        out.extend([title, "-" * len(title), "", "::", ""])
        out.extend("    " + line if line else "" for line in help_text.rstrip().splitlines())
        out.append("")

    block("``nds``", parser.format_help())
    for name, sub in _subparsers(parser).items():
        block(f"``nds {name}``", sub.format_help())
        for sub_name, subsub in _subparsers(sub).items():
            block(f"``nds {name} {sub_name}``", subsub.format_help())
    return "\n".join(out) + "\n"
