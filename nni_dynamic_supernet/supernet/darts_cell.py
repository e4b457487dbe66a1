"""NNI's path-sampling DARTS cell, made freezable so a subnet keeps the supernet's weights.

NNI 3.0 turns a DARTS-style ``Cell`` built from an op factory (the hub's ``DARTS``/``NDS`` spaces)
into a ``PathSamplingCell``, whose ``freeze`` raises ``NotImplementedError``: a subnet cannot be
taken out of such a supernet. :class:`FreezablePathSamplingCell` is that cell (same modules,
labels, sampling and forward) with a ``freeze`` that builds NNI's own frozen ``Cell`` around the
supernet's chosen ops, so :func:`~.subnet.freeze_subnet` works on the whole supernet and the
subnet computes exactly what the supernet computes for the architecture.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from ..quiet_logs import quiet_nni_import

with quiet_nni_import():
    from nni.nas.nn.pytorch import Cell
    from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingCell
    from nni.nas.space import model_context

__all__ = ["FreezablePathSamplingCell"]


class FreezablePathSamplingCell(PathSamplingCell):
    """NNI's ``PathSamplingCell`` with a weight-keeping ``freeze``; made by the same mutation hook (``mutate``)."""

    def freeze(self, sample: dict) -> nn.Module:
        """NNI's frozen ``Cell`` for ``sample`` whose ops are the supernet's chosen ops (shared, not frozen).

        Like the supernet (``PathSamplingCell`` always concatenates every node), the frozen cell merges all nodes.
        The op on edge ``input -> node`` is the supernet's op of that edge, as the supernet runs it.
        """
        first = self.num_predecessors

        def chosen_op(name: str) -> Callable[[int, int, Any], nn.Module]:
            def op(node: int, op_index: int, chosen: Any) -> nn.Module:
                return self.ops[node - first][int(chosen)][name]
            return op

        with model_context(sample):
            cell = Cell({name: chosen_op(name) for name in self.op_names}, self.num_nodes, self.num_ops_per_node,
                        first, "all", self.preprocessor, self.postprocessor, self.concat_dim, label=self.label)
        # The factories point into this supernet: a frozen cell must not keep it alive (nor fail to pickle).
        cell.op_candidates_factory = None
        return cell
