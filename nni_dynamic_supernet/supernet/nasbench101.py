"""A path-sampling supernet version of NNI's ``NasBench101Cell``, which NNI's own one-shot strategies refuse.

NNI 3.0's ``NasBench101Cell`` has no forward of its own (it only exists to be frozen) and no one-shot
version: ``RandomOneShot`` stops with "has dangling mutables". :class:`PathSamplingNasBench101Cell`
replaces it in the supernet. It keeps the cell's labels (``<cell>/num_nodes``, ``<cell>/op<i>``,
``<cell>/input<i>``), its candidate ops (one ``LayerChoice``, made NNI's ``PathSamplingLayer``, per
interior node) and its input projections, and runs the sampled DAG with weight sharing:

* the sampled adjacency is pruned exactly as the fixed cell prunes it (vertices not on a path from
  IN to OUT are dropped);
* every interior vertex runs its op at the cell's full width (``out_features``; the supernet cell
  NNI builds has no other width), fed by the sum of its predecessors and, when connected to IN, the
  projection of the input;
* OUT concatenates the leading channels of each vertex feeding it, split as the fixed cell splits
  them (``compute_vertex_channels``), and adds the projected input when IN feeds OUT; a single
  predecessor of OUT is returned as is.

The one approximation is the interior width: a frozen subnet builds vertices narrower than
``out_features`` when OUT has several predecessors, the supernet slices them at OUT instead. A sampled
graph that violates the cell constraint (more than ``max_num_edges`` edges, or IN not connected to
OUT) still runs (the disconnected case as IN's projection alone), so strict-fair samplers keep their
fairness; searches and exports keep only valid architectures (the space's constraint).

``freeze`` gives :class:`FrozenNasBench101Cell`: the supernet's computation for one architecture, at
full width, with NNI's fixed cell's module names (``projections.<t>``, ``ops.<t>`` for pruned vertex
``t``). Its weights load into NNI's fixed cell by their leading channels (the slice the supernet
keeps at OUT), which is how an exported subnet inherits them.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from ..quiet_logs import quiet_nni_import

with quiet_nni_import():
    from nni.mutable import ConstraintViolation
    from nni.nas.hub.pytorch.modules.nasbench101 import NasBench101Cell, compute_vertex_channels, prune
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
    from nni.nas.oneshot.pytorch.supermodule.sampling import PathSamplingLayer

__all__ = ["PathSamplingNasBench101Cell", "FrozenNasBench101Cell"]


class PathSamplingNasBench101Cell(BaseSuperNetModule):
    """Weight-sharing NAS-Bench-101 cell driven by ``resample(memo)`` like NNI's path-sampling modules.

    Parameters
    ----------
    cell
        The ``NasBench101Cell`` of the model space; its projections and candidate ops are reused.
    """

    def __init__(self, cell: Any) -> None:
        super().__init__()
        self.max_num_nodes = int(cell.max_num_nodes)
        self.max_num_edges = int(cell.max_num_edges)
        self.in_features = int(cell.in_features)
        self.out_features = int(cell.out_features)
        self._label = str(cell.label)
        self.projections = cell.projections
        ops: list[nn.Module] = [nn.Identity()]
        for layer in list(cell.ops)[1:]:
            ops.append(PathSamplingLayer(layer.candidates, layer.label))
        self.ops = nn.ModuleList(ops)
        # The cell's own decisions (num_nodes, inputs, constraint); op labels belong to the PathSamplingLayers.
        self.num_nodes_choice = cell.num_nodes
        self.input_choices = [inp.choice for inp in list(cell.inputs)[1:]]
        self.add_mutable(cell.constraint)
        self._sampled: Optional[tuple[list[int], list[list[int]]]] = None
        self._plans: dict[tuple, tuple] = {}

    @property
    def label(self) -> str:
        """The cell's label (the prefix of its node, op and input labels)."""
        return self._label

    def own_labels(self) -> list[str]:
        """The labels this cell decides itself (its ops' labels belong to their path-sampling layers)."""
        return [str(self.num_nodes_choice.label)] + [str(c.label) for c in self.input_choices]

    def resample(self, memo: dict) -> dict:
        """Take ``num_nodes`` and every ``input<i>`` from ``memo`` (random for a missing label)."""
        result: dict = {}
        for mutable in [self.num_nodes_choice, *self.input_choices]:
            label = str(mutable.label)
            result[label] = memo[label] if label in memo else mutable.random()
        self._sampled = self._graph(result)
        return result

    def _graph(self, sample: dict) -> tuple[list[int], list[list[int]]]:
        """``([num_nodes], inputs)``: the graph of the architecture ``sample`` (every label of the cell given)."""
        num_nodes = int(sample[str(self.num_nodes_choice.label)])
        inputs = [sorted(int(i) for i in sample[str(c.label)]) for c in self.input_choices[:num_nodes - 1]]
        return [num_nodes], inputs

    def export(self, memo: dict) -> dict:
        """A random value for every label of the cell missing from ``memo``."""
        return {label: value for label, value in self.resample(memo).items() if label not in memo}

    def freeze(self, sample: dict) -> nn.Module:
        """The supernet's cell for the architecture ``sample`` (a valid one), sharing its modules.

        The chosen ops are the supernet's candidates as they are (not frozen themselves:
        :func:`~.subnet.freeze_subnet` walks into them).
        """
        kept, matrix, channels = self._plan(self._graph(sample))
        if matrix is None:
            raise ValueError(f"{self._label}: IN is not connected to OUT (the cell constraint is violated)")
        last = len(kept) - 1
        projections = [nn.Identity(), *(self.projections[kept[t]] for t in range(1, last)), self.projections[-1]]
        layers = [self.ops[kept[t]] for t in range(1, last)]
        ops = [nn.Identity(), *(layer[layer.choice.freeze(sample)] for layer in layers)]
        return FrozenNasBench101Cell(projections, ops, matrix, channels)

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict, mutate_kwargs: dict) -> Any:
        """NNI mutation hook: replace a ``NasBench101Cell`` (its op LayerChoices included)."""
        if type(module) is NasBench101Cell:
            return cls(module)
        return None

    def _plan(self, graph: tuple[list[int], list[list[int]]]) -> tuple:
        """``(vertices, matrix, channels)`` of ``graph`` (see :meth:`_graph`) after pruning, cached per graph."""
        (num_nodes,), inputs = graph
        key = (num_nodes, tuple(tuple(i) for i in inputs))
        plan = self._plans.get(key)
        if plan is None:
            matrix = np.zeros((num_nodes, num_nodes), dtype=int)
            for dst, srcs in enumerate(inputs, start=1):
                for src in srcs:
                    matrix[src, dst] = 1
            try:
                pruned, kept = prune(matrix, list(range(num_nodes)))
                channels = compute_vertex_channels(self.in_features, self.out_features, pruned)
            except (ConstraintViolation, AssertionError):
                pruned, kept, channels = None, [0, num_nodes - 1], None  # IN not connected to OUT
            plan = self._plans[key] = (list(kept), pruned, channels)
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the cell's sampled nodes, ops and inputs on x."""
        if self._sampled is None:
            raise RuntimeError("resample() the NAS-Bench-101 cell before its forward")
        kept, matrix, channels = self._plan(self._sampled)
        if matrix is None:
            return self.projections[-1](x)
        last = len(kept) - 1
        projections = [self.projections[kept[t]] for t in range(last)] + [self.projections[-1]]
        return run_pruned_cell(x, matrix, channels, projections, [self.ops[kept[t]] for t in range(last)])


class FrozenNasBench101Cell(nn.Module):
    """One architecture of :class:`PathSamplingNasBench101Cell`: the supernet's computation, at full width.

    Its modules are named as in NNI's fixed cell (``projections.<t>``, ``ops.<t>`` for pruned vertex
    ``t``, ``projections.<last>`` for IN -> OUT), with the supernet's shapes: every vertex has
    ``out_features`` channels where NNI's fixed cell may have fewer.

    Parameters
    ----------
    projections, ops
        The modules of each pruned vertex (``nn.Identity`` for IN), shared with the supernet.
    matrix, channels
        The pruned adjacency matrix and NNI's vertex channels for it (OUT keeps that many leading channels).
    """

    def __init__(self, projections: list, ops: list, matrix: np.ndarray, channels: list) -> None:
        super().__init__()
        self.projections = nn.ModuleList(projections)
        self.ops = nn.ModuleList(ops)
        self.matrix = matrix
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the frozen cell on x."""
        return run_pruned_cell(x, self.matrix, self.channels, list(self.projections), list(self.ops))


def run_pruned_cell(x: torch.Tensor, matrix: np.ndarray, channels: list, projections: list,
                    ops: list) -> torch.Tensor:
    """The supernet's forward of a pruned NAS-Bench-101 graph (``projections[-1]``: IN -> OUT).

    Every vertex runs at full width on the sum of its predecessors; OUT concatenates the leading
    ``channels[src]`` channels of each vertex feeding it.
    """
    last = len(matrix) - 1
    tensors: list[torch.Tensor] = [x]
    for t in range(1, last):
        add_in = [tensors[src] for src in range(1, t) if matrix[src, t]]
        if matrix[0, t]:
            add_in.append(projections[t](x))
        tensors.append(ops[t](add_in[0] if len(add_in) == 1 else sum(add_in)))
    feeding = [src for src in range(last) if matrix[src, last]]
    if len(feeding) == 1:
        src = feeding[0]
        return projections[-1](x) if src == 0 else tensors[src]
    out = torch.cat([tensors[src][:, :channels[src]] for src in feeding if src != 0], 1)
    if matrix[0, last]:
        out = out + projections[-1](x)
    return out
