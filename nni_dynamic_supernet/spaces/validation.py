"""Checks that a model space is one our training engine can handle, and reads its search space.

The training engine forces subnets through the supernet modules' ``resample(memo=...)`` and assumes
every searchable decision is a categorical choice between whole modules, i.e. an NNI
:class:`~nni.nas.nn.pytorch.LayerChoice`. Several LayerChoice modules may share one label (NAS-Bench-201's
cells do); the label is then one decision. Anything else (InputChoice, Repeat with a searchable depth,
``nni.choice`` inside a ``MutableConv2d``, constraints, numerical mutables) would be sampled by NNI
outside our control, so :func:`check_supported` refuses it with a one-line :class:`ConfigError`.

This module also holds the private argument checks shared by the space factories, so each factory
reports bad arguments the same way (``space.<arg>=<value>: <fix>``).
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Iterator, Sequence

from ..errors import ConfigError

__all__ = ['search_space_of', 'check_supported', 'count_architectures']

_UNSUPPORTED_FIX = 'only LayerChoice-backed categorical choices are supported; use LayerChoice for every searchable decision'


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
    from nni.mutable import Categorical, LabeledMutable, Mutable
    from nni.nas.nn.pytorch import LayerChoice, MutableModule


# --------------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------------

def search_space_of(space: Any) -> dict[str, list]:
    """Return the search space of ``space`` as ``{label: [choice values]}``.

    The order of labels is the order of :meth:`simplify` (module definition order), and the values keep
    the order of each ``Categorical.values`` (LayerChoice candidate keys), so the result is stable across
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
        If a decision is not categorical (numerical mutables, multi-choice, constraints).
    """
    result: dict[str, list] = {}
    for label, mutable in space.simplify().items():
        if not isinstance(mutable, Categorical):
            raise ConfigError('space', f'{type(mutable).__name__} {label!r}', _UNSUPPORTED_FIX)
        result[label] = list(mutable.values)
    return result


def check_supported(space: Any) -> None:
    """Raise :class:`ConfigError` unless every searchable decision of ``space`` is a LayerChoice.

    Walks all modules of the space. A module that owns mutables is acceptable only if it is a
    :class:`LayerChoice` whose sole mutable is its own categorical choice; any other owner (``InputChoice``,
    ``Repeat`` with a searchable depth, ``MutableConv2d`` built with ``nni.choice``, constraints added to the
    space) is reported with its label, type and module path. Finally every label of ``simplify()`` must be a
    ``Categorical`` backed by at least one LayerChoice module.

    Parameters
    ----------
    space
        The NNI ``ModelSpace`` to check (pristine or already mutated into a supernet).

    Raises
    ------
    ConfigError
        One line, e.g. ``space="InputChoice 'skip' at cells.1": ...; use LayerChoice for every searchable
        decision``.
    """
    if not isinstance(space, MutableModule):
        raise ConfigError('space', type(space).__name__, 'pass an NNI ModelSpace (nni.nas.nn.pytorch.ModelSpace)')
    if _is_supernet(space):
        # A mutated supernet has no LayerChoice left; its labels come from NNI's own sampling modules,
        # which we checked when the pristine space went through this function. Trust simplify() only.
        search_space_of(space)
        return
    layer_choice_labels: set[str] = set()
    for path, module in space.named_modules():
        if not isinstance(module, MutableModule):
            continue
        owned = list(module.mutables)
        if isinstance(module, LayerChoice):
            layer_choice_labels.add(module.label)
            owned = [m for m in owned if m is not module.choice]
        for mutable in owned:
            label, kind = _describe(mutable)
            where = path or '<root>'
            raise ConfigError('space', f'{kind} {label!r} in {type(module).__name__} at {where}', _UNSUPPORTED_FIX)
    for label, mutable in space.simplify().items():
        if not isinstance(mutable, Categorical) or label not in layer_choice_labels:
            raise ConfigError('space', f'{type(mutable).__name__} {label!r}', _UNSUPPORTED_FIX)


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


def _describe(mutable: Mutable) -> tuple[str, str]:
    """Return (label, type name) of an offending mutable, using its first labeled leaf if it has no label."""
    if isinstance(mutable, LabeledMutable):
        return str(mutable.label), type(mutable).__name__
    leaves = list(mutable.leaf_mutables(lambda m: isinstance(m, LabeledMutable)))
    if leaves:
        leaf = leaves[0]
        return str(leaf.label), f'{type(mutable).__name__}({type(leaf).__name__})'
    return '?', type(mutable).__name__


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools rejected), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f'space.{name}', value, f'use an integer >= {minimum}')
    return int(value)


def _check_int_sequence(name: str, value: Any, minimum: int = 1, allowed: Sequence[int] | None = None,
                        length: int | None = None) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ints, each >= ``minimum`` (and in ``allowed`` when given).

    Raises ConfigError naming ``space.<name>`` when the value is not a non-empty list/tuple of such ints
    or (with ``length``) does not have that many entries.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ConfigError(f'space.{name}', value, 'use a non-empty list of integers')
    if length is not None and len(value) != length:
        raise ConfigError(f'space.{name}', value, f'use a list of {length} integers (one per stage)')
    for v in value:
        bad = isinstance(v, bool) or not isinstance(v, int) or v < minimum
        if bad or (allowed is not None and v not in allowed):
            what = f'one of {list(allowed)}' if allowed is not None else f'an integer >= {minimum}'
            raise ConfigError(f'space.{name}', value, f'every entry must be {what}')
    return tuple(int(v) for v in value)


def _check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a positive real number, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f'space.{name}', value, 'use a positive number')
    return float(value)


def _check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f'space.{name}', value, 'use a number in [0, 1)')
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
