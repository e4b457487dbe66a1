"""What training and search ask of a space: its complexity model (cached per space) and its validity check.

Both are read from the **pristine** space (before NNI's one-shot mutation): CaLR, sampling and
search constraints, NSGA-II and the diagnostics count parameters and FLOPs with
:func:`complexity_model_for`; path samplers and searchers keep NAS-Bench-101's cell rules with
:func:`validity_check`.
"""
from __future__ import annotations

import json
import weakref
from typing import Any, Callable, Optional

from torch import nn

from ..errors import ConfigError
from .complexity import ComplexityModel
from .introspection import arch_is_valid, constraints_of, has_only_layer_choices

__all__ = ["complexity_model_for", "validity_check"]

_COMPLEXITY_CACHE: dict[Any, Any] = {}
_COMPLEXITY_OWNER: dict[int, Any] = {}  # id key -> weak reference to the user space it was built for


def complexity_model_for(pristine_space: Optional[nn.Module]) -> Any:
    """A cached :class:`ComplexityModel` of an un-mutated space.

    Registered spaces are cached by name and arguments, so repeated runs in one process
    (tests, ``nds bench compare`` workers) pay NNI's profiler build once; a user's own
    space is cached by object.
    """
    if pristine_space is None:
        raise ConfigError("training.lr_policy", "calr", "needs the un-mutated space to count parameters; "
                          "pass the model space before it is turned into a supernet")
    shape = getattr(pristine_space, "nds_input_shape", None)
    if not shape:
        # Never guess: a wrong dummy input makes the profiler trace a different network (or fail).
        raise ConfigError("training.lr_policy", "calr", "needs the input shape of one example; it is read from the "
                          "training data (the evaluator's train dataloader or the recipe's dataset)")
    name = getattr(pristine_space, "nds_space_name", None)
    kwargs = getattr(pristine_space, "nds_space_kwargs", None)
    if not name and getattr(pristine_space, "trace_kwargs", None) is not None and not getattr(pristine_space,
                                                                                            "trace_args", ()):
        # An NNI hub space (``@model_wrapper``) is rebuilt from its class and keyword arguments alone.
        symbol = getattr(pristine_space, "trace_symbol", type(pristine_space))
        name, kwargs = f"{symbol.__module__}.{symbol.__qualname__}", pristine_space.trace_kwargs
    key: Any = (name, json.dumps(kwargs, sort_keys=True, default=str), tuple(shape)) if name else id(pristine_space)
    owner = _COMPLEXITY_OWNER.get(key)
    if key not in _COMPLEXITY_CACHE or (not name and (owner is None or owner() is not pristine_space)):
        # CPython reuses the id of a freed object: an id key is only valid while its space lives.
        # Where NNI's profiler cannot trace a general space, each count freezes a subnet (0.2-3 s on NNI's hub
        # spaces): bounds are then estimated from fewer architectures than for LayerChoice spaces.
        limit = 200 if has_only_layer_choices(pristine_space) else 50
        _COMPLEXITY_CACHE[key] = ComplexityModel(pristine_space, shape, self_check_samples=1, freeze_eval_limit=limit)
        if not name:
            _COMPLEXITY_OWNER[key] = weakref.ref(pristine_space)
    return _COMPLEXITY_CACHE[key]


def validity_check(pristine_space: Optional[Any]) -> Optional[Callable[[dict], bool]]:
    """``arch -> bool`` for a space with constraints (NAS-Bench-101), ``None`` when every architecture is valid.

    The answers are cached by architecture: a path sampler asks about every path it draws.
    """
    if pristine_space is None or not constraints_of(pristine_space):
        return None
    cache: dict = {}

    def valid(arch: dict) -> bool:
        key = tuple(arch.items())
        if key not in cache:
            cache[key] = arch_is_valid(pristine_space, arch)
        return cache[key]

    return valid
