"""What a model space offers: its search space, its constraints, and whether we can train it.

The training engine forces subnets through the supernet modules' ``resample(memo=...)`` (NNI's one-shot
path-sampling modules, plus our own for ``NasBench101Cell``). Every searchable decision is a *label*
with a finite list of values:

* ``Categorical`` (``LayerChoice``, ``Repeat`` depth, ``nni.choice`` widths/kernels/expansions, including
  the leaves of mutable expressions such as ``s0_width_mult * 16``): its values;
* ``CategoricalMultiple`` (``InputChoice``, DARTS/NAS-Bench-101 cell inputs): every allowed subset, as a
  sorted tuple of candidate indices (tuples are hashable; they are turned into lists for NNI and
  exported as lists).

Constraints (``NasBench101CellConstraint``) are no labels: architectures are checked against them with
:func:`arch_is_valid`. Numerical mutables are refused by :func:`search_space_of` with a one-line
:class:`ConfigError` naming the label.
"""
from __future__ import annotations

import itertools
import math
import sys
from typing import Any, Sequence

from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import

__all__ = ['search_space_of', 'search_space_of_model', 'check_supported', 'count_architectures', 'multi_labels',
           'arch_for_nni', 'normalize_arch', 'arch_is_valid', 'constraints_of',
           'has_only_layer_choices', 'is_supernet']

_UNSUPPORTED_FIX = 'only categorical decisions are supported (LayerChoice, InputChoice, Repeat depth, nni.choice)'


with quiet_nni_import():
    from nni.mutable import Categorical, CategoricalMultiple, Constraint
    from nni.nas.nn.pytorch import LayerChoice, MutableModule


def search_space_of(space: Any) -> dict[str, list]:
    """Return the search space of ``space`` as ``{label: [choice values]}``.

    The order of labels is the order of :meth:`simplify` (module definition order), and the values keep
    the order of each ``Categorical.values`` (LayerChoice candidate keys); a ``CategoricalMultiple`` gives
    its allowed subsets as sorted tuples (by size, then lexicographically). The result is stable across
    runs and processes and can be used to index architectures. Works on a pristine space and on a supernet
    produced by NNI's one-shot mutation (labels and values are the same).

    Parameters
    ----------
    space
        An NNI ``ModelSpace`` (or any ``nni.mutable.Mutable``).

    Returns
    -------
    dict[str, list]
        Label to list of choice values, e.g. ``{'cell/0_1': ['none', 'skip_connect', ...], ...}``.

    Raises
    ------
    ConfigError
        If a decision is not categorical (numerical mutables), or is a constraint other than
        NAS-Bench-101's cell constraint.
    """
    result: dict[str, list] = {}
    for label, mutable in space.simplify().items():
        if isinstance(mutable, Constraint):
            if type(mutable).__name__ == 'NasBench101CellConstraint':  # enforced by our NAS-Bench-101 cell
                continue
            raise ConfigError('space', f'{type(mutable).__name__} {label!r}', 'constraints between choices are not '
                              'supported (samplers would train and export excluded architectures); drop it')
        if isinstance(mutable, CategoricalMultiple):
            result[label] = _subsets(mutable)
        elif isinstance(mutable, Categorical):
            result[label] = list(mutable.values)
        else:
            raise ConfigError('space', f'{type(mutable).__name__} {label!r}', _UNSUPPORTED_FIX)
    return result


def _subsets(mutable: Any) -> list[tuple]:
    """Every value of a ``CategoricalMultiple``: the allowed subsets of its candidates, as sorted tuples."""
    values = sorted(mutable.values)
    sizes = [mutable.n_chosen] if mutable.n_chosen is not None else range(0, len(values) + 1)
    return [tuple(c) for k in sizes for c in itertools.combinations(values, k)]


def multi_labels(space: Any) -> set[str]:
    """Labels of ``space`` whose values are subsets (``CategoricalMultiple``: input choices)."""
    return {str(label) for label, m in space.simplify().items() if isinstance(m, CategoricalMultiple)}


def arch_for_nni(arch: dict) -> dict:
    """``arch`` with subset values as lists, the form NNI's ``freeze``, ``contains`` and exports use."""
    return {label: (list(value) if isinstance(value, tuple) else value) for label, value in arch.items()}


def normalize_arch(arch: dict, search_space: dict[str, list]) -> dict:
    """``arch`` read from JSON (subsets as lists) in the search space's form (subsets as sorted tuples)."""
    out = {}
    for label, value in arch.items():
        choices = search_space.get(label)
        if isinstance(value, list) and choices and isinstance(choices[0], tuple):
            value = tuple(sorted(value))
        out[label] = value
    return out


def constraints_of(space: Any) -> list:
    """The constraints of ``space`` (cached on it: ``simplify()`` walks every module)."""
    cached = getattr(space, '_nds_constraints', None)
    if cached is None:
        cached = [m for m in space.simplify().values() if isinstance(m, Constraint)]
        try:
            space._nds_constraints = cached
        except AttributeError:
            pass
    return cached


def arch_is_valid(space: Any, arch: dict) -> bool:
    """Whether ``arch`` satisfies every constraint of ``space`` (NAS-Bench-101's edge limit and pruning)."""
    constraints = constraints_of(space)
    if not constraints:
        return True
    sample = arch_for_nni(arch)
    return all(c.check_contains(sample) is None for c in constraints)


def search_space_of_model(model: Any) -> dict[str, list]:
    """:func:`search_space_of` with plain Python values: label -> choices of a model space or supernet.

    NNI labels are ``str`` subclasses; plain types keep checkpoints loadable with ``weights_only=True``.
    """
    return {str(label): [_plain(v) for v in choices] for label, choices in search_space_of(model).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, tuple):  # a subset of an input choice
        return tuple(_plain(v) for v in value)
    return str(value)


def has_only_layer_choices(space: Any) -> bool:
    """True when every mutable of ``space`` is a LayerChoice's own choice (our original, fastest path)."""
    labels: set[str] = set()
    for module in space.modules():
        if not isinstance(module, MutableModule):
            continue
        owned = list(module.mutables)
        if isinstance(module, LayerChoice):
            labels.add(module.label)
            owned = [m for m in owned if m is not module.choice]
        if owned:
            return False
    return all(isinstance(m, Categorical) and not isinstance(m, CategoricalMultiple) and label in labels
               for label, m in space.simplify().items())


def check_supported(space: Any) -> None:
    """Raise :class:`ConfigError` unless every searchable decision of ``space`` is one we can train.

    Every label of ``simplify()`` must be categorical (or a constraint); modules that NNI's one-shot
    mutation cannot replace are reported when the space is mutated (:func:`~nni_dynamic_supernet.supernet.modules.mutate_to_supernet`).

    Parameters
    ----------
    space
        The NNI ``ModelSpace`` to check (pristine or already mutated into a supernet).

    Raises
    ------
    ConfigError
        One line, e.g. ``space="Numerical 'lr'": only categorical decisions are supported ...``.
    """
    if not isinstance(space, MutableModule):
        raise ConfigError('space', type(space).__name__, 'pass an NNI ModelSpace (nni.nas.nn.pytorch.ModelSpace)')
    search_space_of(space)


def count_architectures(search_space: dict[str, Sequence]) -> int:
    """Return the number of architectures in ``search_space`` (product of the choice counts).

    Parameters
    ----------
    search_space
        ``{label: [choice values]}`` as returned by :func:`search_space_of`.

    Returns
    -------
    int
        Exact count as a Python int (it can be huge, e.g. ``4 ** 20`` for ShuffleNet).
    """
    return math.prod(len(values) for values in search_space.values())


def is_supernet(space: Any) -> bool:
    """True if NNI's one-shot mutation already replaced choices in ``space`` by supernet modules.

    Looks the base class up in ``sys.modules`` instead of importing it: importing NNI's one-shot package
    pulls in Lightning, and if it was never imported no supernet module can exist.
    """
    base_mod = sys.modules.get('nni.nas.oneshot.pytorch.supermodule.base')
    if base_mod is None:
        return False
    base = getattr(base_mod, 'BaseSuperNetModule')
    return any(isinstance(m, base) for m in space.modules())
