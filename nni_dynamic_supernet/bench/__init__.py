"""The embedded benchmark: stand-alone training of architectures and ground-truth table building.

* :mod:`.standalone` -- :func:`train_standalone`, the exact stand-alone training protocol of
  ``docs/embedded_benchmark.rst`` (the ground truth rankings are judged by).
* :mod:`.build` -- :func:`sample_architectures`, :func:`build_ground_truth` (resumable, parallel);
  :mod:`.info` -- :func:`bench_info` (summary with the noise ceiling and the capacity signal).
* :mod:`.tables` -- the named embedded tables (``v1``, ``v2``, ``v2_26``), which live in
  :mod:`nni_dynamic_supernet.ranking.tables`.
* :mod:`.compare` / :mod:`.sweep` -- ``nds bench compare`` (paired statistics per technique and
  baseline) and ``nds bench sweep`` (ranking quality per training budget, plateau budget).
* :mod:`.rescore` -- ``nds bench rescore``: finished runs ranked against another table of the same
  architectures, without training.
* :mod:`.compute` -- steps, path forwards and CPU seconds of a run (equal-compute reporting).
* :mod:`.pilot` -- capacity signal, noise ceiling and convergence of a candidate dataset design.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the import graph (and type checkers) see what the names resolve to
    from .build import build_ground_truth, sample_architectures
    from .info import bench_info, capacity_signal, partial_path
    from .standalone import DEFAULT_SPACE_KWARGS, PROTOCOL, train_standalone

# Resolved on first use (PEP 562): ``nds --help`` and the argument parser read the light
# submodules (tables, compare's metric names) without importing torch through ``build``.
_LAZY = {
    "train_standalone": "standalone", "DEFAULT_SPACE_KWARGS": "standalone", "PROTOCOL": "standalone",
    "sample_architectures": "build", "build_ground_truth": "build", "bench_info": "info",
    "capacity_signal": "info", "partial_path": "info",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


__all__ = list(_LAZY)
