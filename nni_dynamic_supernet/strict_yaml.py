"""YAML that cannot silently drop a key or blow up: the reader of every recipe and ``--set`` value.

``yaml.safe_load`` already refuses Python tags, but it accepts three things a recipe must not
have:

* **duplicate keys**: two ``training:`` sections load as the last one, and the first one's
  keys vanish without a word. Here a duplicate key is refused with both line numbers.
  (A YAML merge key ``<<: *base`` followed by an explicit key is an override, not a
  duplicate, and stays allowed.)
* **unbounded alias expansion**: ``&a [*b, *b, ...]`` nests references, so a file of a
  few hundred bytes stands for billions of values. PyYAML shares the referenced objects,
  but every later copy (the recipe's ``to_dict``, an error message) expands them. The
  node graph is measured before anything is built: more than :data:`MAX_VALUES` values
  once expanded is refused.
* **huge or deeply nested files**: a file above :data:`MAX_BYTES` is refused before it is
  read, and nesting too deep for the parser is one line, not a ``RecursionError``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

import yaml

from .errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_VALUES", "load_yaml_file", "load_yaml_text", "parse_yaml_value", "dump_yaml"]

#: Largest recipe file read (the bundled templates are under 3 kB).
MAX_BYTES = 1_000_000
#: Most values (scalars, lists and mappings) a YAML document may stand for once its aliases are expanded.
MAX_VALUES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys (line numbers in the message)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then `key: value` overrides the merged key on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if first is not None:
                raise _Duplicate(key, first, where)
            seen[key] = where
        return super().construct_mapping(node, deep=deep)


class _Duplicate(Exception):
    def __init__(self, key: Any, first: tuple[int, int], second: tuple[int, int]) -> None:
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second

    def where(self) -> str:
        """``lines 3 and 10``, or ``line 1, columns 2 and 18`` for a flow mapping on one line."""
        if self.first[0] == self.second[0]:
            return f"line {self.first[0]}, columns {self.first[1]} and {self.second[1]}"
        return f"lines {self.first[0]} and {self.second[0]}"


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many values the node graph stands for with every alias expanded (stops counting above ``limit``).

    Aliases make the graph a DAG whose nodes are shared; the size of a node is 1 plus its
    children's sizes, memoised per node, so the count costs one pass over the distinct nodes.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again means a recursive alias
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return limit + 1  # a value that contains itself expands without end
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return limit + 1
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


class _Invalid(ConfigError):
    """Text that is not YAML at all (as opposed to YAML refused for a duplicate key or its size)."""


def parse_yaml_value(text: str, field: str) -> Any:
    """A ``--set`` / tuner value read as YAML (``1e-3``, ``true``, ``[a, b]``), or the text itself when it is no YAML.

    Raises
    ------
    ConfigError
        On a duplicate key or an alias expansion above :data:`MAX_VALUES` values.
    """
    try:
        return load_yaml_text(text, field, text)
    except _Invalid:
        return text


def load_yaml_text(text: str, field: str, value: Any) -> Any:
    """Parse one YAML document strictly (see the module docstring).

    Parameters
    ----------
    text
        The YAML text.
    field, value
        What a refusal names (``--config`` and the path, or the ``--set`` key and its text).

    Returns
    -------
    Any
        The loaded value (``None`` for an empty document).

    Raises
    ------
    ConfigError
        On invalid YAML, a duplicate key, an alias expansion above :data:`MAX_VALUES` values
        or nesting too deep to parse.
    yaml.YAMLError
        Never: every parser error becomes a :class:`ConfigError`.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, MAX_VALUES)
        if size > MAX_VALUES:
            raise ConfigError(field, value, f"its YAML aliases expand to more than {MAX_VALUES:,} values; "
                                            "write the values out instead of nesting aliases")
        return loader.construct_document(node)
    except _Duplicate as dup:
        raise ConfigError(field, value, f"duplicate key {dup.key!r} at {dup.where()}; "
                                        "YAML would keep only the last one: merge them into one") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _Invalid(field, value, f"not valid YAML ({first}{where})") from None
    except RecursionError:
        raise ConfigError(field, value, "is nested too deeply to read; flatten it") from None
    finally:
        loader.dispose()


def load_yaml_file(path: Union[str, Path], field: str = "--config") -> Any:
    """Read and strictly parse a YAML file of at most :data:`MAX_BYTES` bytes.

    Raises
    ------
    ConfigError
        When the file is too large, not UTF-8 text, unreadable, or refused by :func:`load_yaml_text`.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(field, str(path), f"is {size:,} bytes; a recipe is at most {MAX_BYTES:,} bytes "
                                                "(pass the YAML recipe, not a data file)")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(field, str(path), "is not a text file; pass a YAML recipe") from None
    except OSError as exc:
        raise ConfigError(field, str(path), f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return load_yaml_text(text, field, str(path))


def dump_yaml(data: Any, header: Sequence[str] = ()) -> str:
    """``data`` as block YAML in its own key order (short lists and mappings inline), after ``header`` comments.

    What this writes, :func:`load_yaml_text` reads back to an equal value (the recipe's
    ``recipe.yaml`` and ``nds config show`` rely on it).

    Parameters
    ----------
    data
        Plain data: mappings, lists, strings, numbers, booleans and ``None``.
    header
        Comment lines written first, each prefixed with ``# ``.

    Returns
    -------
    str

    Examples
    --------
    >>> print(dump_yaml({"strategy": "spos", "space": {"kwargs": {"channels": 8}}}, ["a recipe"]), end="")
    # a recipe
    strategy: spos
    space:
      kwargs: {channels: 8}
    """
    text = yaml.dump(_inline_leaves(data, 0), Dumper=_BlockDumper, sort_keys=False, default_flow_style=False,
                     width=100, allow_unicode=True)
    return "".join(f"# {line}\n" for line in header) + text


class _FlowList(list):
    """A list written inline (``[20, 40]``)."""


class _FlowDict(dict):
    """A mapping written inline (``{channels: 8}``)."""


class _BlockDumper(yaml.SafeDumper):
    """``SafeDumper`` that writes :class:`_FlowList` / :class:`_FlowDict` inline and everything else as blocks."""


_BlockDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_BlockDumper.add_representer(_FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))


def _inline_leaves(value: Any, depth: int) -> Any:
    """Mappings of the top two levels (a recipe and its sections) as blocks; any deeper container inline."""
    if isinstance(value, dict):
        items = {k: _inline_leaves(v, depth + 1) for k, v in value.items()}
        return items if depth < 2 else _FlowDict(items)
    if isinstance(value, (list, tuple)):
        return _FlowList(_inline_leaves(v, depth + 1) for v in value)
    return value
