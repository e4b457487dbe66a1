"""The closest allowed names to a mistyped one ("did you mean ...?"), for one-line error messages.

An unknown recipe key (``training.epoch``), section (``trainng``) or name is answered with the
names :mod:`difflib` finds close to it, not with every allowed name: a section has up to 70
fields, and a line that lists them all hides the one the user meant. Only when nothing is close
are the allowed names listed, as many as fit in :data:`MAX_LISTED_CHARS`.
"""
from __future__ import annotations

import difflib
from typing import Mapping, Sequence

__all__ = ["MAX_LISTED_CHARS", "OTHER_NAMES", "close_names", "did_you_mean", "unknown_field_fix", "unknown_key_fix"]

#: Characters of allowed names an error line lists when no name is close (the rest are counted).
MAX_LISTED_CHARS = 160


def close_names(name: str, allowed: Sequence[str], n: int = 3) -> list[str]:
    """The allowed names closest to ``name``, best first (``difflib``'s ratio of at least 0.6).

    Parameters
    ----------
    name
        What was typed.
    allowed
        The valid names.
    n
        Most names returned.

    Returns
    -------
    list of str

    Examples
    --------
    >>> close_names("epoch", ["epochs", "lr", "split_epochs"])
    ['epochs']
    >>> close_names("optimzer", ["optimizer", "optimizer_state"])
    ['optimizer', 'optimizer_state']
    """
    exact_case = [a for a in allowed if a.lower() == name.lower()]
    return exact_case or difflib.get_close_matches(name, list(allowed), n=n, cutoff=0.6)


def _quoted(names: Sequence[str]) -> str:
    shown = [f"`{n}`" for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def did_you_mean(name: str, allowed: Sequence[str], what: str = "name", see: str = "", prefix: str = "") -> str:
    """The fix part of an error line for an unknown ``name``: the close names, or the allowed ones.

    Parameters
    ----------
    name
        What was typed.
    allowed
        The valid names, in the order to list them.
    what
        What a name is (``field``, ``section``), for the message.
    see
        Where every name is listed, said when the list is cut (``nds config show``).
    prefix
        Written before each suggested name (``training.``), so the suggestion can be pasted as typed.

    Returns
    -------
    str
        ``unknown field; did you mean `epochs`?`` or ``unknown field; allowed: a, b, ... (and 12 more: see ...)``.

    Examples
    --------
    >>> did_you_mean("epoch", ["epochs", "lr"], "field")
    'unknown field; did you mean `epochs`?'
    >>> did_you_mean("zzz", ["epochs", "lr"], "field")
    'unknown field; allowed: epochs, lr'
    """
    close = close_names(name, allowed)
    if close:
        return f"unknown {what}; did you mean {_quoted([prefix + c for c in close])}?"
    listed: list[str] = []
    used = 0
    for candidate in allowed:
        if listed and used + len(candidate) + 2 > MAX_LISTED_CHARS:
            break
        listed.append(candidate)
        used += len(candidate) + 2
    rest = len(allowed) - len(listed)
    more = f" (and {rest} more{': ' + see if see else ''})" if rest else ""
    return f"unknown {what}; allowed: {', '.join(listed)}{more}"


#: What Lightning and NNI call some recipe fields (``ClassificationModule(learning_rate=...)``,
#: ``Trainer(max_epochs=...)``): names too far from the field's for difflib, typed by habit.
OTHER_NAMES = {"learning_rate": "lr", "max_epochs": "epochs", "lr_scheduler": "lr_schedule"}


def unknown_field_fix(section: str, name: str, fields: Sequence[str], source: str = "") -> str:
    """The fix for an unknown field ``name`` of a recipe section: ``unknown field; did you mean `training.epochs`?``.

    Parameters
    ----------
    section
        The section (``training``).
    name
        The field as typed (``epoch``).
    fields
        The section's fields.
    source
        Where the key came from when not from the user (``preset spos``).

    Returns
    -------
    str
    """
    where = f" in {source}" if source else ""
    if OTHER_NAMES.get(name) in fields:
        return f"unknown field{where}; did you mean `{section}.{OTHER_NAMES[name]}`?"
    if name == "seed":
        return f"unknown field{where}; did you mean `seed` (a top-level key)?"
    return did_you_mean(name, fields, f"field{where}", prefix=f"{section}.",
                        see=f"`nds config show` prints every field of {section}")


def unknown_key_fix(dotted: str, sections: Mapping[str, Sequence[str]], top_level: Sequence[str]) -> str:
    """The fix for a key whose first part is no section (``trainng.epochs``) nor a top-level key (``epochs``).

    Parameters
    ----------
    dotted
        The key as typed.
    sections
        Each section's fields.
    top_level
        The keys that are no section (``strategy``, ``seed``).

    Returns
    -------
    str

    Examples
    --------
    >>> unknown_key_fix("trainng.epochs", {"training": ["epochs"]}, ["seed"])
    "unknown section 'trainng'; did you mean `training.epochs`?"
    >>> unknown_key_fix("epochs", {"training": ["epochs"]}, ["seed"])
    'unknown key; did you mean `training.epochs`?'
    """
    head, _, rest = dotted.partition(".")
    top = [*top_level, *sections]
    if rest:
        close = close_names(head, list(sections))
        if close:
            return f"unknown section {head!r}; did you mean `{close[0]}.{rest}`?"
        return f"unknown section {head!r}; allowed: {', '.join(sections)}"
    if close_names(head, top):
        return did_you_mean(head, top, "key")
    # A field written without its section (`epochs`): name the section it belongs to.
    owners = [f"{section}.{head}" for section, fields in sections.items() if head in fields]
    if not owners:
        owners = [f"{section}.{field}" for section, fields in sections.items() for field in close_names(head, fields, 1)]
    if owners:
        return "unknown key; did you mean " + " or ".join(f"`{o}`" for o in owners[:3]) + "?"
    return f"unknown key; allowed top-level keys: {', '.join(top)}"
