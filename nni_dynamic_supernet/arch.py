"""The architecture vocabulary every stage shares: what an architecture is, its key, a random one.

* A **search space** is an ordered ``dict`` ``label -> [choice values]`` (read from an NNI space by
  :func:`~nni_dynamic_supernet.spaces.introspection.search_space_of`); label order is stable, so
  the same seed draws the same architectures in every process.
* An **architecture** is a ``dict`` ``label -> chosen value`` over every label of the space. Input
  choices are sorted tuples of candidate indices (JSON turns them into lists).
* :func:`arch_key` is the one canonical, hashable key of an architecture: equal architectures give
  equal keys whatever their key order. Caches, search boards and ground-truth tables all use it.
* :func:`random_arch` draws each label's choice independently and uniformly from a seeded RNG.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence, Union

__all__ = ["Arch", "SearchSpace", "arch_key", "random_arch"]

#: An architecture: label -> chosen value.
Arch = dict
#: A search space: label -> the list of its choice values.
SearchSpace = dict


def arch_key(arch: Mapping[str, Union[str, int, tuple]]) -> str:
    """Canonical string key of an architecture, to match architectures across dicts, files and processes.

    Parameters
    ----------
    arch
        Mapping from label to choice value.

    Returns
    -------
    str
        ``json.dumps(arch, sort_keys=True, separators=(",", ":"))``: equal architectures give equal
        keys whatever their key order (a subset given as a tuple and as a list are equal too).

    Examples
    --------
    >>> arch_key({"b": 1, "a": "x"})
    '{"a":"x","b":1}'
    """
    return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))


def random_arch(space: Mapping[str, Sequence[Any]], rng: Any) -> dict[str, Any]:
    """One architecture drawn uniformly: each label's choice independently, in the space's label order.

    The draw consumes exactly one ``rng.randint(len(choices))`` per label (``integers`` for a
    ``numpy.random.Generator``), so a seeded RNG gives the same architectures in every run.

    Parameters
    ----------
    space
        ``{label: [choice values]}``; a sub-supernet's allowed choices work the same way.
    rng
        A ``numpy.random.RandomState`` (or ``numpy.random.Generator``) owned by the caller, so the
        caller controls reproducibility and checkpointing.

    Returns
    -------
    dict
        ``{label: choice value}`` with the space's own values.

    Examples
    --------
    >>> import numpy as np
    >>> random_arch({"op": ["conv", "pool"], "width": [8, 16]}, np.random.RandomState(0))
    {'op': 'conv', 'width': 16}
    """
    draw = rng.integers if hasattr(rng, "integers") else rng.randint
    return {label: choices[draw(len(choices))] for label, choices in space.items()}
