"""NNI profiler formulas the package adds, and FLOPs of a fixed model from a real forward pass.

* :func:`register_nb201_formulas` teaches NNI's symbolic profiler NAS-Bench-201's ``Zero`` op and
  the ``stack`` / ``sum`` of its cells, which NNI 3.0 has no shape formulas for.
* :func:`hooked_flops` applies NNI's FLOPs formulas to the shapes recorded in one real forward
  pass: the reference count that :class:`~nni_dynamic_supernet.spaces.complexity.ComplexityModel`
  checks the profiler against, and its fallback for spaces the profiler cannot trace.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..quiet_logs import quiet_nni_import

with quiet_nni_import():
    from nni.nas.hub.pytorch.nasbench201 import Zero
    from nni.nas.profiler.pytorch.flops import (FlopsParamsCounterConfig, FlopsResult, find_flops_formula,
                                                register_flops_formula)
    from nni.nas.profiler.pytorch.utils import (MutableShape, argument_in_spec, concat_name,
                                                register_shape_inference_formula)
    from nni.nas.profiler.pytorch.utils.shape_formula import ensure_shape

__all__ = ["register_nb201_formulas", "hooked_flops"]

_REGISTERED = False


def register_nb201_formulas() -> None:
    """Teach NNI's profiler NAS-Bench-201's ``Zero`` op and the ``stack``/``sum`` of its cells (once).

    Out of the box the profiler fails on NB201: ``Zero`` has no shape formula and the cell's
    ``torch.sum(torch.stack(...), 0)`` hits aten ops without one (NNI 3.0). ``Zero`` also gets
    an explicit 0-FLOPs/0-params formula, which is what NNI would count anyway, minus its warning.
    """
    global _REGISTERED
    if _REGISTERED:
        return

    def _zero_shape(module: Zero, x: Any) -> MutableShape:
        shape = list(ensure_shape(x))
        spatial = [(d + module.stride - 1) // module.stride if module.stride > 1 else d for d in shape[2:]]
        return MutableShape(shape[0], module.C_out, *spatial)

    def _stack_shape(fn: Any, tensors: Sequence[Any], dim: int = 0, **kwargs: Any) -> MutableShape:
        shape = list(ensure_shape(tensors[0]))
        shape.insert(dim % (len(shape) + 1), len(tensors))
        return MutableShape(*shape)

    def _sum_shape(fn: Any, x: Any, dim: Sequence[int], keepdim: bool = False, **kwargs: Any) -> MutableShape:
        shape = list(ensure_shape(x))
        reduced = {d % len(shape) for d in dim}
        return MutableShape(*[(1 if i in reduced else v) for i, v in enumerate(shape) if keepdim or i not in reduced])

    register_shape_inference_formula(Zero, _zero_shape)
    register_shape_inference_formula(torch.ops.aten.stack.default, _stack_shape)
    register_shape_inference_formula(torch.ops.aten.sum.dim_IntList, _sum_shape)
    if find_flops_formula(Zero(1, 1, 1)) is None:
        register_flops_formula(Zero, lambda module, inputs, output: FlopsResult(0, 0))
    _REGISTERED = True


def _to_shape(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return MutableShape(*[int(d) for d in x.shape])
    if isinstance(x, (list, tuple)):
        return tuple(_to_shape(t) for t in x)
    return x


@torch.no_grad()
def hooked_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of a fixed (frozen) model with NNI's formulas applied to shapes recorded in a real forward.

    This is what the profiler computes symbolically, so the two agree whenever the profiler's shape
    inference is right; it needs no shape formulas, which makes it the fallback for spaces the profiler
    cannot trace. Runs in eval mode with batch 1 (BatchNorm cannot train on one 1x1 sample) and restores
    the training flags; the hooks are always removed.

    Parameters
    ----------
    model
        A fixed model (no mutables left), e.g. ``space.freeze(arch)``.
    input_shape
        Shape of one input without the batch dimension.

    Returns
    -------
    int
        The model's FLOPs for one input.
    """
    register_nb201_formulas()
    shapes: dict[str, tuple[Any, Any]] = {}
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            ins = tuple(_to_shape(t) for t in inputs if isinstance(t, (torch.Tensor, list, tuple)))
            shapes[name] = (ins, _to_shape(output))
        return hook

    modes = {m: m.training for m in model.modules()}
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_hook(make_hook(name)))
        model.eval()
        model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    result = _count_tree('', model, shapes, FlopsParamsCounterConfig())
    return int(round(float(result)))


@functools.lru_cache(maxsize=None)
def _formula_takes(formula: Callable, arg: str) -> bool:
    """Cached ``argument_in_spec``: ``inspect.signature`` per module call dominated the fallback's cost."""
    return argument_in_spec(formula, arg)


def _count_tree(name: str, module: nn.Module, shapes: dict[str, tuple[Any, Any]],
                config: FlopsParamsCounterConfig) -> float:
    """NNI's ``count_flops_params`` traversal (FLOPs part), tolerant of modules that never ran (0 FLOPs)."""
    formula = find_flops_formula(module)
    if formula is not None:
        if name not in shapes:
            return 0.0
        kwargs = {arg: value for arg, value in (('name', name), ('shapes', shapes), ('config', config),
                                                ('count_bias', config.count_bias),
                                                ('count_normalization', config.count_normalization),
                                                ('count_activation', config.count_activation))
                  if _formula_takes(formula, arg)}
        return float(formula(module, *shapes[name], **kwargs).flops)
    return float(sum(_count_tree(concat_name(name, child_name), child, shapes, config)
                     for child_name, child in module.named_children()))
