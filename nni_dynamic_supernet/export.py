"""Export one subnet of a trained supernet as a standalone model.

NNI users keep asking how to get a deployable model out of a supernet. The answer:
``freeze`` the (routed) supernet at the architecture, deep-copy it (``freeze`` shares
the chosen ops with the supernet), recalibrate its BatchNorm statistics on training
batches, and save its ``state_dict``. It loads strictly into ``space.freeze(arch)``
of a freshly built space, for retraining or deployment.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .atomic_io import atomic_torch_save, atomic_write_json

__all__ = ["export_subnet", "frozen_subnet"]


def frozen_subnet(run: Any, arch: dict) -> nn.Module:
    """A standalone copy of ``arch`` with inherited weights and recalibrated BN statistics."""
    from .pipeline import predict
    from .spaces.validation import arch_for_nni, normalize_arch
    arch = normalize_arch(arch, run.search_space)  # input choices: JSON lists -> the search space's tuples
    predict(run, [arch])  # validates the architecture with a one-line error
    leaf = run.partition.route(arch)
    model = copy.deepcopy(run.models[leaf].freeze(arch_for_nni(arch)))
    if run.recipe.search.bn_mode == "recalibrate":
        from .search.evaluate import take_batches
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        with torch.no_grad():
            for x, _ in take_batches(run.calib_loader(), run.recipe.search.bn_batches):
                model(x)
        for bn in bns:
            bn.momentum = 0.1
    return model.eval()


def export_subnet(run: Any, arch: dict, out_dir: Path) -> dict[str, Path]:
    """Write ``arch.json`` and ``weights.pt`` (a plain state_dict) for ``arch`` to ``out_dir``."""
    model = frozen_subnet(run, arch)
    out_dir = Path(out_dir)
    weights = atomic_torch_save(out_dir / "weights.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
    arch_path = atomic_write_json(out_dir / "arch.json", {
        "arch": arch, "space": run.recipe.space.name, "space_kwargs": run.recipe.space.kwargs,
        "load": "space = create_space(space, **space_kwargs); model = space.freeze(arch); "
                "model.load_state_dict(torch.load('weights.pt', weights_only=True))",
    })
    return {"arch": arch_path, "weights": weights}
