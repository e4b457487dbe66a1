"""Export one subnet of a trained supernet as a standalone model.

NNI users keep asking how to get a deployable model out of a supernet. The answer here: the model
is NNI's own ``space.freeze(arch)`` of the un-mutated space (what a user rebuilds to deploy it),
and its weights are the supernet's, read from the subnet that
:func:`~.supernet.subnet.freeze_subnet` takes out of the supernet (NNI's own ``freeze`` of the
supernet gives new random weights to NNI's ``DARTS`` and refuses DARTS and NAS-Bench-101 cells).
The BatchNorm statistics are then recalibrated on training batches (``search.bn_mode:
recalibrate``) and the ``state_dict`` is saved; it loads strictly into ``space.freeze(arch)`` of a
freshly built space.

A NAS-Bench-101 vertex is narrower in NNI's frozen cell than in the supernet when OUT has several
predecessors: it inherits the leading channels, the slice the supernet itself passes to OUT.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .atomic_io import atomic_torch_save, atomic_write_json
from .errors import ConfigError
from .search.evaluate import take_batches
from .spaces.introspection import arch_for_nni, arch_is_valid, normalize_arch
from .stages import predict, space_kwargs
from .supernet.nasbench101 import FrozenNasBench101Cell
from .supernet.subnet import freeze_subnet

__all__ = ["export_subnet", "frozen_subnet", "inherited_subnet"]


def inherited_subnet(supernet: nn.Module, pristine_space: nn.Module, arch: dict) -> nn.Module:
    """``pristine_space.freeze(arch)`` (a new model) holding ``supernet``'s weights for ``arch``.

    Parameters
    ----------
    supernet
        The trained supernet (one partition leaf's).
    pristine_space
        The un-mutated space the supernet was made from; it is left untouched.
    arch
        A valid architecture, subsets as lists (:func:`~.spaces.introspection.arch_for_nni`).

    Raises
    ------
    ConfigError
        When the space's frozen model has other weights than the supernet's subnet (a user
        space whose ``freeze`` builds another network than the one the supernet trains).
    """
    # Fresh modules draw initial weights: keep the caller's random stream as it was.
    with torch.random.fork_rng(devices=[]):
        model = copy.deepcopy(pristine_space.freeze(arch))  # freeze shares the space's chosen modules
    trained = freeze_subnet(supernet, arch)
    wide = tuple(f"{name}." for name, m in trained.named_modules() if isinstance(m, FrozenNasBench101Cell))
    source, target = trained.state_dict(), model.state_dict()
    name = getattr(pristine_space, "nds_space_name", None) or type(pristine_space).__name__
    if set(source) != set(target):
        key = sorted(set(source) ^ set(target))[0]
        raise ConfigError("space", name, f"its frozen model and the supernet's subnet hold different weights "
                                         f"(first: {key}); export needs a freeze that keeps the module structure")
    with torch.no_grad():
        for key, value in target.items():
            src = source[key]
            if src.shape != value.shape and key.startswith(wide) and src.dim() == value.dim() and all(
                    s >= v for s, v in zip(src.shape, value.shape)):
                src = src[tuple(slice(0, v) for v in value.shape)]  # a narrower NAS-Bench-101 vertex
            if src.shape != value.shape:
                raise ConfigError("space", name, f"{key} has shape {tuple(value.shape)} in the frozen model and "
                                                 f"{tuple(src.shape)} in the supernet; export cannot map it")
            value.copy_(src)
    return model


def frozen_subnet(run: Any, arch: dict) -> nn.Module:
    """A standalone copy of ``arch`` with inherited weights and recalibrated BN statistics."""
    arch = normalize_arch(arch, run.search_space)  # input choices: JSON lists -> the search space's tuples
    predict(run, [arch])  # validates the architecture with a one-line error
    if not arch_is_valid(run.pristine_space, arch):
        raise ConfigError("arch", arch, "violates the space's constraint (NAS-Bench-101: at most max_num_edges "
                                        "edges, IN connected to OUT); pick a valid architecture")
    leaf = run.partition.route(arch)
    model = inherited_subnet(run.models[leaf], run.pristine_space, arch_for_nni(arch)).to(run.device)
    if run.recipe.search.bn_mode == "recalibrate":
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average over the calibration batches
        model.train()
        with torch.no_grad():
            for x, _ in take_batches(run.calib_loader(), run.recipe.search.bn_batches, run.device):
                model(x)
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
    return model.eval()


def export_subnet(run: Any, arch: dict, out_dir: Path) -> dict[str, Path]:
    """Write ``arch.json`` and ``weights.pt`` (a plain state_dict) for ``arch`` to ``out_dir``."""
    model = frozen_subnet(run, arch)
    out_dir = Path(out_dir)
    weights = atomic_torch_save(out_dir / "weights.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
    # Every argument the space was built with (the data's classes and shape too), so the "load" line rebuilds it.
    arch_path = atomic_write_json(out_dir / "arch.json", {
        "arch": arch, "space": run.recipe.space.name, "space_kwargs": space_kwargs(run.recipe, run.splits),
        "load": "space = create_space(space, **space_kwargs); model = space.freeze(arch); "
                "model.load_state_dict(torch.load('weights.pt', weights_only=True))",
    })
    return {"arch": arch_path, "weights": weights}
