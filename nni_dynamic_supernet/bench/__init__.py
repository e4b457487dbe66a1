"""The embedded benchmark: stand-alone training of architectures and ground-truth table building.

* :mod:`.standalone` -- :func:`train_standalone`, the exact stand-alone training protocol of
  ``docs/embedded_benchmark.rst`` (the ground truth rankings are judged by).
* :mod:`.build` -- :func:`sample_architectures`, :func:`build_ground_truth` (resumable, parallel)
  and :func:`bench_info` (summary with the noise ceiling).
"""
from .build import bench_info, build_ground_truth, partial_path, sample_architectures
from .standalone import DEFAULT_SPACE_KWARGS, PROTOCOL, train_standalone

__all__ = [
    "train_standalone",
    "sample_architectures",
    "build_ground_truth",
    "bench_info",
    "partial_path",
    "DEFAULT_SPACE_KWARGS",
    "PROTOCOL",
]
