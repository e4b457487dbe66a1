"""NAS-Bench-201 search space, built on NNI's :class:`~nni.nas.hub.pytorch.NasBench201`.

We reuse NNI's implementation unchanged so labels (``cell/0_1`` ... ``cell/2_3``, shared by all cells),
op names (``none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3``) and module names stay NNI's. That keeps
architectures interchangeable with NNI's NAS-Bench-201 benchmark database and with NNI strategies. The only
addition is a configurable number of input channels (the stem conv is rebuilt when it is not 3), so
grayscale data works.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import
from .arguments import check_positive_int, tag_space

with quiet_nni_import():
    from nni.nas.hub.pytorch import NasBench201

__all__ = ['nas_bench_201', 'NasBench201Space', 'NB201_OPS', 'NB201_LABELS', 'TINY_KWARGS']

NB201_OPS: tuple[str, ...] = ('none', 'skip_connect', 'conv_1x1', 'conv_3x3', 'avg_pool_3x3')
"""Candidate op names of every edge, in NNI's (and the benchmark's) order."""

NB201_LABELS: tuple[str, ...] = ('cell/0_1', 'cell/0_2', 'cell/1_2', 'cell/0_3', 'cell/1_3', 'cell/2_3')
"""The six edge labels shared by all cells, in NNI's ``simplify()`` order."""

TINY_KWARGS: dict[str, Any] = dict(channels=4, cells_per_stage=3, num_classes=10, in_channels=3, input_size=8)
"""Size used with the embedded default dataset (3x8x8 images, 10 classes): quick to train on a CPU."""


class NasBench201Space(NasBench201):
    """NNI's NAS-Bench-201 space with a configurable number of input channels.

    Subclassing (instead of patching an instance) keeps NNI's traced init arguments consistent, so
    ``NasBench201Space.frozen_factory(arch)`` and NNI's serialization rebuild the same network.

    Parameters
    ----------
    channels
        Channels of the stem and of the first stage (16 in the paper); stages use C, 2C and 4C.
    cells_per_stage
        Searchable cells per stage (5 in the paper). All cells share one genotype.
    num_classes
        Number of output classes.
    in_channels
        Channels of the input images. When not 3, the stem conv is rebuilt for that many channels.
    """

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__(stem_out_channels=channels, num_modules_per_stack=cells_per_stage, num_labels=num_classes)
        self.in_channels = in_channels
        if in_channels != 3:
            # Same layer as NNI's stem conv, only the input width differs.
            self.stem[0] = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)


def nas_bench_201(channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10, in_channels: int = 3,
                  input_size: int = 32) -> NasBench201Space:
    """Build the NAS-Bench-201 search space (5^6 = 15,625 architectures).

    Defaults are the benchmark's (C=16, N=5, CIFAR-10 sized input). :data:`TINY_KWARGS` is the size used with
    the embedded default dataset.

    Parameters
    ----------
    channels
        Channels of the first stage.
    cells_per_stage
        Cells per stage (the benchmark uses 5).
    num_classes
        Number of classes of the classifier.
    in_channels
        Channels of the input images.
    input_size
        Height and width of the (square) input. Must be a multiple of 4 because the two ResNet reduction
        blocks halve the resolution with a stride-2 conv and a 2x2 average pool that must agree.

    Returns
    -------
    NasBench201Space
        A pristine NNI ``ModelSpace`` with attributes ``nds_input_shape``, ``nds_space_name`` and
        ``nds_space_kwargs``.

    Raises
    ------
    ConfigError
        If an argument is not a positive integer or ``input_size`` is not a multiple of 4.

    Examples
    --------
    >>> space = nas_bench_201(**TINY_KWARGS)
    >>> sorted(space.simplify())[:2]
    ['cell/0_1', 'cell/0_2']
    """
    kwargs = dict(channels=channels, cells_per_stage=cells_per_stage, num_classes=num_classes,
                  in_channels=in_channels, input_size=input_size)
    for name in ('channels', 'cells_per_stage', 'num_classes', 'in_channels'):
        check_positive_int(name, kwargs[name])
    check_positive_int('input_size', input_size, minimum=4)
    if input_size % 4:
        raise ConfigError('space.kwargs.input_size', input_size, 'use a multiple of 4 (two stride-2 reductions)')
    space = NasBench201Space(channels=channels, cells_per_stage=cells_per_stage, num_classes=num_classes,
                             in_channels=in_channels)
    return tag_space(space, 'nas_bench_201', kwargs, (in_channels, input_size, input_size))
