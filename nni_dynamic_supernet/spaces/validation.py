"""Checks that a model space is one our training engine can handle, and reads its search space.

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

This module also holds the private argument checks shared by the space factories, so each factory
reports bad arguments the same way (``space.kwargs.<arg>=<value>: <fix>``).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from typing import Any, Iterator, Sequence

from ..errors import ConfigError

__all__ = ['search_space_of', 'check_supported', 'count_architectures', 'multi_labels', 'arch_for_nni',
           'normalize_arch', 'arch_is_valid', 'constraints_of', 'has_only_layer_choices']

_UNSUPPORTED_FIX = 'only categorical decisions are supported (LayerChoice, InputChoice, Repeat depth, nni.choice)'


@contextlib.contextmanager
def _quiet_nni_import() -> Iterator[None]:
    """Silence NNI's import-time "is found to be not a nn.Module" RuntimeWarning.

    NNI 3.0 wraps every ``torch.nn`` class when ``nni.nas.nn.pytorch.layers`` is first imported and
    warns about newer torch names (``Buffer``, ...) that are not modules. The warning is harmless;
    every module of ours that imports NNI does so inside this guard so users never see it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is found to be not a nn.Module', category=RuntimeWarning)
        yield


with _quiet_nni_import():
    from nni.mutable import Categorical, CategoricalMultiple, Constraint
    from nni.nas.nn.pytorch import LayerChoice, MutableModule


# --------------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Private helpers
# --------------------------------------------------------------------------------------------------

def _is_supernet(space: Any) -> bool:
    """True if NNI's one-shot mutation already replaced choices in ``space`` by supernet modules.

    Looks the base class up in ``sys.modules`` instead of importing it: importing NNI's one-shot package
    pulls in Lightning, and if it was never imported no supernet module can exist.
    """
    import sys
    base_mod = sys.modules.get('nni.nas.oneshot.pytorch.supermodule.base')
    if base_mod is None:
        return False
    base = getattr(base_mod, 'BaseSuperNetModule')
    return any(isinstance(m, base) for m in space.modules())


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools rejected), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f'space.kwargs.{name}', value, f'use an integer >= {minimum}')
    return int(value)


def _check_int_sequence(name: str, value: Any, minimum: int = 1, allowed: Sequence[int] | None = None,
                        length: int | None = None) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ints, each >= ``minimum`` (and in ``allowed`` when given).

    Raises ConfigError naming ``space.kwargs.<name>`` when the value is not a non-empty list/tuple of such ints
    or (with ``length``) does not have that many entries.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a non-empty list of integers')
    if length is not None and len(value) != length:
        raise ConfigError(f'space.kwargs.{name}', value, f'use a list of {length} integers (one per stage)')
    for v in value:
        bad = isinstance(v, bool) or not isinstance(v, int) or v < minimum
        if bad or (allowed is not None and v not in allowed):
            what = f'one of {list(allowed)}' if allowed is not None else f'an integer >= {minimum}'
            raise ConfigError(f'space.kwargs.{name}', value, f'every entry must be {what}')
    return tuple(int(v) for v in value)


def _check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive real number, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a positive number')
    return float(value)


def _check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f'space.kwargs.{name}', value, 'use a number in [0, 1)')
    return float(value)


def _tag_space(space: Any, name: str, kwargs: dict[str, Any], input_shape: tuple[int, int, int]) -> Any:
    """Attach the ``nds_*`` attributes every factory promises and return ``space``.

    ``nds_input_shape`` lets later stages (complexity model, data checks) build dummy inputs without
    knowing the factory; ``nds_space_name``/``nds_space_kwargs`` let a checkpoint or results.json record
    how to rebuild the space.
    """
    space.nds_input_shape = tuple(int(d) for d in input_shape)
    space.nds_space_name = name
    space.nds_space_kwargs = dict(kwargs)
    return space
