"""The NNI supernet's plumbing: mutating a model space into a supernet and driving its modules.

* :func:`mutate_to_supernet`: a model space becomes a weight-sharing supernet with NNI's
  path-sampling mutation hooks (plus our NAS-Bench-101 cell, :mod:`.nasbench101`);
* :func:`arch_setter`: a function that makes the supernet run a given architecture
  (``PathSamplingLayer.resample(memo=...)``);
* :func:`op_modules` and :func:`shared_labels`: the candidate ops of each choice and the
  labels several modules share, which the training components and the search read.

It sits below both the search and the NNI bridge (:mod:`nni_dynamic_supernet.nni_bridge`,
which re-exports these names), so neither has to import the other.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch.nn as nn

from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import
from ..spaces.introspection import has_only_layer_choices, multi_labels
from .darts_cell import FreezablePathSamplingCell
from .nasbench101 import PathSamplingNasBench101Cell

with quiet_nni_import():
    from nni.mutable import Categorical, CategoricalMultiple
    from nni.nas.nn.pytorch import ModelSpace
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot, no_default_hook
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
    from nni.nas.oneshot.pytorch.supermodule.operation import NATIVE_MIXED_OPERATIONS, MixedOperation
    from nni.nas.oneshot.pytorch.supermodule.sampling import (PathSamplingCell, PathSamplingInput, PathSamplingLayer,
                                                              PathSamplingRepeat)

__all__ = ["hooks_for", "layer_choice_hooks", "unsupported_module_error", "mutate_to_supernet", "supernet_modules",
           "arch_setter", "op_modules", "shared_labels", "weighted_labels"]


def layer_choice_hooks() -> list:
    """Mutation hooks for spaces made of LayerChoices alone.

    RandomOneShot's defaults also turn every ``MutableConv2d`` / ``MutableLinear`` into a
    mixed operation even when it holds no mutable; a LayerChoice-only space keeps its other
    modules plain and fast.
    """
    return [PathSamplingLayer.mutate, no_default_hook]


def _general_hooks() -> list:
    """NNI's path-sampling hooks for every mutable, plus our ``NasBench101Cell``.

    ``LayerChoice``, ``InputChoice``, ``Repeat`` with a depth choice and DARTS-style ``Cell`` get
    NNI's ``PathSampling*`` modules (the cell as :class:`~.darts_cell.FreezablePathSamplingCell`, so
    a subnet can be frozen out of the supernet with its weights); layers built with ``nni.choice``
    arguments (``MutableConv2d``, ``MutableLinear``, ``MutableBatchNorm2d``,
    ``MutableMultiheadAttention`` ...) become NNI's
    mixed operations, which slice one weight tensor to the sampled width or kernel. A layer
    without a mutable argument stays the plain layer (a mixed operation would only cost time).
    """
    def only_if_mutable(hook: Callable) -> Callable:
        def run(module: nn.Module, name: str, memo: dict, kwargs: dict) -> Any:
            return hook(module, name, memo, kwargs) if getattr(module, "mutables", None) else None
        return run

    def already_mutated(module: nn.Module, name: str, memo: dict, kwargs: dict) -> Optional[bool]:
        # Our NAS-Bench-101 cell creates its PathSamplingLayers itself: they must not be mutated again.
        return True if isinstance(module, BaseSuperNetModule) else None

    return [already_mutated, PathSamplingLayer.mutate, PathSamplingInput.mutate, PathSamplingRepeat.mutate,
            FreezablePathSamplingCell.mutate, PathSamplingNasBench101Cell.mutate,
            *(only_if_mutable(op.mutate) for op in NATIVE_MIXED_OPERATIONS), no_default_hook]


def hooks_for(space: ModelSpace) -> list:
    """The mutation hooks that turn ``space`` into our supernet (LayerChoice-only spaces keep the fast set)."""
    return layer_choice_hooks() if has_only_layer_choices(space) else _general_hooks()


def unsupported_module_error(exc: Exception, space: ModelSpace) -> Exception:
    """NNI's refusal of a module (no one-shot version) as our one-line ConfigError."""
    return ConfigError("space", type(space).__name__, str(exc).splitlines()[0])


def mutate_to_supernet(space: ModelSpace) -> ModelSpace:
    """Turn ``space`` into a weight-sharing supernet in place, with NNI's path-sampling hooks."""
    strategy = RandomOneShot()
    hooks = hooks_for(space)
    strategy.default_mutation_hooks = lambda: hooks  # type: ignore[method-assign]
    try:
        return strategy.mutate_model(space)
    except (TypeError, ValueError) as exc:
        raise unsupported_module_error(exc, space) from None


def supernet_modules(model: nn.Module) -> list[BaseSuperNetModule]:
    """Every NNI supernet module (``PathSamplingLayer`` ...) of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, BaseSuperNetModule)]


def arch_setter(model: nn.Module) -> Callable[[dict], None]:
    """A function that makes ``model`` run a given architecture.

    The module list is computed once: the step must not walk the module tree.
    ``resample(memo)`` samples at random, silently, for a label missing from ``memo``,
    so every label must be present; several modules sharing a label (NAS-Bench-201
    cells) all read the same memo entry. Subset values (input choices) are tuples in our
    search space and lists for NNI's modules.
    """
    modules = supernet_modules(model)
    multi = sorted(multi_labels(model))
    # NNI's plain path-sampling layers and inputs only store ``memo[label]`` when it is there (and return
    # it unchanged): their attribute is written directly, skipping ``Module.__setattr__``'s checks (a value
    # that is never a tensor or module), which were most of the cost of a step's 50-odd resample calls.
    direct = [(m, m.label) for m in modules if type(m) in (PathSamplingLayer, PathSamplingInput)]
    others = [m for m in modules if type(m) not in (PathSamplingLayer, PathSamplingInput)]
    needed = frozenset(label for _, label in direct)
    store = object.__setattr__

    def set_arch(arch: dict) -> None:
        memo = dict(arch)
        for label in multi:
            if label in memo:
                memo[label] = list(memo[label])
        if not needed.issubset(memo.keys()):  # a missing label is drawn at random, in module order, as NNI does
            for module in modules:
                memo.update(module.resample(memo=memo))
            return
        for module, label in direct:
            store(module, "_sampled", memo[label])
        for module in others:
            memo.update(module.resample(memo=memo))

    return set_arch


def op_modules(model: nn.Module, slices: bool = False) -> list[tuple[str, Any, nn.Module]]:
    """``(label, choice, candidate module)`` for every choice of ``model`` that is a module of its own.

    Layer choices give their candidates; a DARTS-style cell (NNI's ``PathSamplingCell``) gives,
    for its op label ``<cell>/op_<i>_<k>``, the op on every edge into node ``i``. Depths and
    input choices own no module and are not listed.

    With ``slices=True``, every value of a label that a mixed operation (a sliced width, kernel
    or expansion) depends on also lists that operation: its gradient outside the sampled slice
    is zero, so its gradient norm is the slice's (PA's importance of sliced choices). Such
    values own no distinct weights (:func:`weighted_labels`
    reads the list without them).
    """
    out = []
    for module in supernet_modules(model):
        if isinstance(module, MixedOperation):
            if slices:
                for label, mutable in module.simplify().items():
                    out.extend((str(label), value, module) for value in getattr(mutable, "values", []))
            continue
        if isinstance(module, PathSamplingCell):
            for node, edges in enumerate(module.ops, start=module.num_predecessors):
                for k in range(module.num_ops_per_node):
                    label = f"{module.label}/op_{node}_{k}"
                    for edge in edges:
                        out.extend((label, name, edge[name]) for name in module.op_names)
            continue
        names = getattr(module, "names", None)
        if names is None:
            continue
        for name in names:
            out.append((module.label, name, module[name]))
    return out


def _own_labels(module: nn.Module) -> set[str]:
    """The labels a supernet module decides itself (its own mutables' leaves, not its children's)."""
    if hasattr(module, "own_labels"):
        return set(module.own_labels())
    labels: set[str] = set()
    for mutable in getattr(module, "mutables", []):
        for leaf in mutable.leaf_mutables(lambda m: isinstance(m, (Categorical, CategoricalMultiple))):
            if isinstance(leaf, (Categorical, CategoricalMultiple)):
                labels.add(str(leaf.label))
    if not labels and getattr(module, "label", None) is not None:
        labels.add(str(module.label))
    return labels


def shared_labels(model: nn.Module) -> set[str]:
    """Labels carried by more than one supernet module (cell spaces such as NAS-Bench-201)."""
    seen: dict[str, int] = {}
    for module in supernet_modules(model):
        for label in _own_labels(module):
            seen[label] = seen.get(label, 0) + 1
    return {label for label, count in seen.items() if count > 1}


def weighted_labels(op_modules: Any) -> list[str]:
    """Labels whose choices own distinct weights: candidate modules of their own, one at least with parameters.

    ``LayerChoice`` labels (and DARTS cell ops) qualify; widths, kernels and depths of sliced or
    repeated layers, and input choices, do not (their choices share one weight tensor or own none).

    Parameters
    ----------
    op_modules
        ``(label, choice, module)`` triples, as :func:`op_modules` lists them.

    Returns
    -------
    list[str]
        The labels, in the order they first appear.
    """
    out: list[str] = []
    for label, _, module in op_modules:
        if label not in out and any(True for _ in module.parameters()):
            out.append(label)
    return out
