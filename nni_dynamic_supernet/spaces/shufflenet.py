"""SPOS ShuffleNetV2 search space (Guo et al., "Single Path One-Shot"), without channel search.

Layout (width 1.0, ImageNet): 3x3 stride-2 stem conv (16) -> 20 choice blocks in 4 stages of depths
4, 4, 8, 4 and widths 64, 160, 320, 640 (the first block of each stage has stride 2) -> 1x1 conv (1024) ->
global average pool -> dropout -> linear (no bias). Each block chooses one of ``choice_3``, ``choice_5``,
``choice_7`` (ShuffleNetV2 block with that depthwise kernel) and ``choice_x`` (Xception-like block), so the
space has 4^20 architectures.

The blocks are NNI's :class:`~nni.nas.hub.pytorch.shufflenet.ShuffleNetBlock` and
:class:`~nni.nas.hub.pytorch.shufflenet.ShuffleXceptionBlock` with plain integer channels. NNI's own
``ShuffleNetSpace`` is not reused directly because its stage sizes and input channels are hard-coded and
its labels (``layer_1`` ... ``layer_20``, ``k3``/``xcep``) differ from the SPOS code's naming we use.
Labels here are ``block_0`` ... ``block_{n-1}``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import
from .arguments import check_int_sequence, check_positive_int, check_probability, tag_space

with quiet_nni_import():
    from nni.nas.hub.pytorch.shufflenet import ShuffleNetBlock, ShuffleNetSpace as _NniShuffleNetSpace
    from nni.nas.hub.pytorch.shufflenet import ShuffleXceptionBlock
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

__all__ = ['shufflenet', 'SposShuffleNetSpace', 'CHOICES', 'TINY_KWARGS']

CHOICES: tuple[str, ...] = ('choice_3', 'choice_5', 'choice_7', 'choice_x')
"""Candidate keys of every choice block, in order."""

TINY_KWARGS: dict[str, Any] = dict(depths=(2, 2), widths=(16, 32), stem_channels=8, last_channels=32,
                                   num_classes=10, in_channels=3, input_size=16)
"""Small preset for tests and CPU demos: 4 choice blocks (256 architectures)."""


class SposShuffleNetSpace(ModelSpace):
    """The SPOS ShuffleNetV2 space; see the module docstring and :func:`shufflenet`.

    Parameters
    ----------
    depths, widths
        Choice blocks and output channels per stage.
    stem_channels, last_channels
        Channels of the stem conv and of the final 1x1 conv.
    num_classes, in_channels
        Classifier outputs and input image channels.
    stem_stride
        Stride of the stem conv (2 on ImageNet; 1 keeps more resolution on small images).
    dropout
        Dropout before the classifier.
    affine
        Affine BatchNorm in the blocks and the last conv.
    """

    def __init__(self, depths: Sequence[int] = (4, 4, 8, 4), widths: Sequence[int] = (64, 160, 320, 640),
                 stem_channels: int = 16, last_channels: int = 1024, num_classes: int = 1000, in_channels: int = 3,
                 stem_stride: int = 2, dropout: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        self.last_channels = last_channels
        self.first_conv = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = stem_channels
        for depth, c_out in zip(depths, widths):
            for j in range(depth):
                stride = 2 if j == 0 else 1
                # A stride-1 block splits its input in two halves, so it sees c_out channels; the stride-2
                # block takes the previous stage's width.
                inp = c_in if j == 0 else c_out
                mid = c_out // 2
                blocks.append(LayerChoice({
                    'choice_3': ShuffleNetBlock(inp, c_out, mid, kernel_size=3, stride=stride, affine=affine),
                    'choice_5': ShuffleNetBlock(inp, c_out, mid, kernel_size=5, stride=stride, affine=affine),
                    'choice_7': ShuffleNetBlock(inp, c_out, mid, kernel_size=7, stride=stride, affine=affine),
                    'choice_x': ShuffleXceptionBlock(inp, c_out, mid, stride=stride, affine=affine),
                }, label=f'block_{len(blocks)}'))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.conv_last = nn.Sequential(
            nn.Conv2d(c_in, last_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last_channels, affine=affine),
            nn.ReLU(inplace=True),
        )
        self.globalpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last_channels, num_classes, bias=False)
        # SPOS initialisation, shared with NNI's implementation (it only walks named_modules()).
        _NniShuffleNetSpace._initialize_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch ``x`` of shape ``(N, in_channels, H, W)`` into logits ``(N, num_classes)``."""
        x = self.features(self.first_conv(x))
        x = self.globalpool(self.conv_last(x)).flatten(1)
        return self.classifier(self.dropout(x))


def shufflenet(depths: Sequence[int] = (4, 4, 8, 4), widths: Sequence[int] = (64, 160, 320, 640),
               stem_channels: int = 16, last_channels: int = 1024, num_classes: int = 1000, in_channels: int = 3,
               input_size: int = 224, stem_stride: int = 2, dropout: float = 0.1) -> SposShuffleNetSpace:
    """Build the SPOS ShuffleNetV2 space (default: the paper's 20-block ImageNet space, 4^20 archs).

    Parameters
    ----------
    depths
        Choice blocks per stage (the first of each stage has stride 2).
    widths
        Output channels per stage. Each must be even (ShuffleNet splits channels in halves) and larger than
        the previous stage's (or the stem's) width, because a stride-2 block concatenates its input projection
        with ``width - input width`` new channels.
    stem_channels
        Output channels of the 3x3 stem conv.
    last_channels
        Channels of the final 1x1 conv.
    num_classes
        Number of classes.
    in_channels
        Channels of the input images.
    input_size
        Height/width of the input; only recorded (global pooling makes the net resolution-agnostic).
    stem_stride
        Stride of the stem conv, 1 or 2.
    dropout
        Dropout probability before the classifier.

    Returns
    -------
    SposShuffleNetSpace
        A pristine NNI ``ModelSpace`` with ``nds_input_shape``, ``nds_space_name``, ``nds_space_kwargs``.

    Raises
    ------
    ConfigError
        On non-positive sizes, odd or non-increasing widths, or mismatched list lengths.

    Examples
    --------
    >>> space = shufflenet(**TINY_KWARGS)
    >>> list(space.simplify())
    ['block_0', 'block_1', 'block_2', 'block_3']
    """
    kwargs = dict(depths=list(depths) if isinstance(depths, (list, tuple)) else depths,
                  widths=list(widths) if isinstance(widths, (list, tuple)) else widths,
                  stem_channels=stem_channels, last_channels=last_channels, num_classes=num_classes,
                  in_channels=in_channels, input_size=input_size, stem_stride=stem_stride, dropout=dropout)
    depths_t = check_int_sequence('depths', depths)
    widths_t = check_int_sequence('widths', widths, minimum=2, length=len(depths_t))
    for name in ('stem_channels', 'last_channels', 'num_classes', 'in_channels', 'input_size'):
        check_positive_int(name, kwargs[name])
    if stem_stride not in (1, 2) or isinstance(stem_stride, bool):
        raise ConfigError('space.kwargs.stem_stride', stem_stride, 'use 1 or 2')
    check_probability('dropout', dropout)
    prev = stem_channels
    for w in widths_t:
        if w % 2 or w <= prev:
            raise ConfigError('space.kwargs.widths', list(widths_t),
                              f'use even widths, each larger than the previous one (stem_channels={stem_channels})')
        prev = w
    space = SposShuffleNetSpace(depths=depths_t, widths=widths_t, stem_channels=stem_channels,
                                last_channels=last_channels, num_classes=num_classes, in_channels=in_channels,
                                stem_stride=stem_stride, dropout=dropout)
    return tag_space(space, 'shufflenet', kwargs, (in_channels, input_size, input_size))
