"""ProxylessNAS / MobileNetV2-style chain space with one LayerChoice per searchable layer.

This is the "MobileNet space" of the CaLR, PA&DA and GM-NAS papers (the ProxylessNAS mobile space):

* fixed stem: 3x3 conv, stride 2 (32 channels), then a fixed depthwise-separable conv (16 channels);
* 21 searchable layers in 6 stages (widths 24, 40, 80, 96, 192, 320; depths 4, 4, 4, 4, 4, 1;
  strides 2, 2, 2, 1, 2, 1); each layer chooses an MBConv (inverted residual) with kernel {3, 5, 7} x
  expansion {3, 6} (keys ``k3_e3`` ... ``k7_e6``), plus ``skip`` (identity) on layers that keep the
  shape (stride 1, same in/out channels), i.e. 6 candidates on the first layer of a stage, 7 elsewhere;
* fixed 1x1 "feature mix" conv (1280), global average pool, linear classifier.

NNI's own :class:`~nni.nas.hub.pytorch.ProxylessNAS` searches depth with ``Repeat``, which our engine does not
support, so the space is rebuilt here from NNI's blocks (``ConvBNReLU``, ``DepthwiseSeparableConv``,
``InvertedResidual``) with plain integer channels. Labels are ``layer_0`` ... ``layer_{n-1}``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import
from .arguments import check_int_sequence, check_positive_float, check_positive_int, check_probability, tag_space

with quiet_nni_import():
    from nni.nas.hub.pytorch.proxylessnas import (ConvBNReLU, DepthwiseSeparableConv, InvertedResidual,
                                                  make_divisible, reset_parameters)
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace

__all__ = ['mobilenet', 'MobileNetSpace', 'TINY_KWARGS', 'SKIP']

SKIP = 'skip'
"""Key of the identity candidate on shape-preserving layers."""

TINY_KWARGS: dict[str, Any] = dict(widths=(8, 8, 16), depths=(1, 2, 1), strides=(2, 1, 2), stem_channels=8,
                                   first_channels=8, last_channels=16, num_classes=10, in_channels=3, input_size=16)
"""Small preset for tests and CPU demos: 4 searchable layers, two of them with ``skip``."""


def _scale(width: int, width_mult: float, divisor: int = 8) -> int:
    """Scale a channel count like MobileNet/ProxylessNAS do (round to a multiple of 8).

    With ``width_mult == 1`` the width is kept exactly, so tiny test spaces with 4 or 6 channels are not
    inflated to 8.
    """
    if width_mult == 1.0:
        return width
    return int(make_divisible(width * width_mult, divisor))


class MobileNetSpace(ModelSpace):
    """ProxylessNAS/MobileNetV2 chain space; see the module docstring and :func:`mobilenet`.

    Parameters
    ----------
    widths, depths, strides
        Per-stage output channels, number of searchable layers and stride of the stage's first layer.
    stem_channels, first_channels, last_channels
        Channels of the stem conv, of the fixed depthwise-separable conv and of the final 1x1 conv.
    num_classes, in_channels
        Classifier outputs and input image channels.
    kernel_sizes, expand_ratios
        MBConv candidate grid of every searchable layer.
    dropout
        Dropout before the classifier.
    bn_eps, bn_momentum
        BatchNorm settings (ProxylessNAS uses eps 1e-3).
    """

    def __init__(self, widths: Sequence[int] = (24, 40, 80, 96, 192, 320), depths: Sequence[int] = (4, 4, 4, 4, 4, 1),
                 strides: Sequence[int] = (2, 2, 2, 1, 2, 1), stem_channels: int = 32, first_channels: int = 16,
                 last_channels: int = 1280, num_classes: int = 1000, in_channels: int = 3,
                 kernel_sizes: Sequence[int] = (3, 5, 7), expand_ratios: Sequence[int] = (3, 6),
                 dropout: float = 0.0, bn_eps: float = 1e-3, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = ConvBNReLU(in_channels, stem_channels, stride=2)
        first = DepthwiseSeparableConv(stem_channels, first_channels, kernel_size=3, stride=1)
        # NNI decides the residual with "in is out", which depends on int caching; decide by value.
        first.has_skip = stem_channels == first_channels
        self.first = first

        layers: list[nn.Module] = []
        c_in = first_channels
        for c_out, depth, stage_stride in zip(widths, depths, strides):
            for j in range(depth):
                stride = stage_stride if j == 0 else 1
                candidates: dict[str, nn.Module] = {}
                for k in kernel_sizes:
                    for e in expand_ratios:
                        block = InvertedResidual(c_in, c_out, e, k, stride)
                        block.has_skip = stride == 1 and c_in == c_out
                        candidates[f'k{k}_e{e}'] = block
                if stride == 1 and c_in == c_out:
                    candidates[SKIP] = nn.Identity()
                layers.append(LayerChoice(candidates, label=f'layer_{len(layers)}'))
                c_in = c_out
        self.layers = nn.Sequential(*layers)

        self.feature_mix = ConvBNReLU(c_in, last_channels, kernel_size=1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last_channels, num_classes)
        self.bn_eps, self.bn_momentum = bn_eps, bn_momentum
        reset_parameters(self, bn_momentum=bn_momentum, bn_eps=bn_eps)

    def freeze(self, sample: dict) -> nn.Module:
        """The subnet ``sample`` with the space's BatchNorm settings (``ModelSpace.freeze`` alone loses them).

        NNI rebuilds every BatchNorm from its constructor arguments when it freezes it: eps would
        fall back to 1e-5 while the supernet trains and evaluates with ``bn_eps``.
        """
        model = super().freeze(sample)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eps, module.momentum = self.bn_eps, self.bn_momentum
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch ``x`` of shape ``(N, in_channels, H, W)`` into logits ``(N, num_classes)``."""
        x = self.first(self.stem(x))
        x = self.layers(x)
        x = self.global_pool(self.feature_mix(x)).flatten(1)
        return self.classifier(self.dropout(x))


def mobilenet(widths: Sequence[int] = (24, 40, 80, 96, 192, 320), depths: Sequence[int] = (4, 4, 4, 4, 4, 1),
              strides: Sequence[int] = (2, 2, 2, 1, 2, 1), stem_channels: int = 32, first_channels: int = 16,
              last_channels: int = 1280, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
              width_mult: float = 1.0, kernel_sizes: Sequence[int] = (3, 5, 7), expand_ratios: Sequence[int] = (3, 6),
              dropout: float = 0.0) -> MobileNetSpace:
    """Build the ProxylessNAS/MobileNetV2-style space (default: the paper's 21-layer ImageNet space).

    Every searchable layer is a ``LayerChoice`` labelled ``layer_<i>`` over MBConv blocks ``k{k}_e{e}``
    (plus ``skip`` where the layer keeps its shape). The default space has 6^6 * 7^15 architectures.
    :data:`TINY_KWARGS` gives a 4-layer version for tests.

    Parameters
    ----------
    widths
        Output channels of each stage (before ``width_mult``).
    depths
        Searchable layers per stage; same length as ``widths``.
    strides
        Stride (1 or 2) of each stage's first layer; same length as ``widths``.
    stem_channels
        Output channels of the fixed stride-2 stem conv.
    first_channels
        Output channels of the fixed depthwise-separable conv after the stem.
    last_channels
        Channels of the final 1x1 conv (scaled only when ``width_mult > 1``, as in ProxylessNAS).
    num_classes
        Number of classes.
    in_channels
        Channels of the input images.
    input_size
        Height/width of the input; only recorded (the net is resolution-agnostic thanks to global pooling).
    width_mult
        Channel multiplier; scaled widths are rounded to multiples of 8 (kept exact when 1.0).
    kernel_sizes
        Depthwise kernel sizes of the MBConv candidates (odd integers).
    expand_ratios
        Expansion ratios of the MBConv candidates.
    dropout
        Dropout probability before the classifier.

    Returns
    -------
    MobileNetSpace
        A pristine NNI ``ModelSpace`` with ``nds_input_shape``, ``nds_space_name``, ``nds_space_kwargs``.

    Raises
    ------
    ConfigError
        On non-positive sizes, mismatched list lengths, strides other than 1/2 or even kernel sizes.

    Examples
    --------
    >>> space = mobilenet(**TINY_KWARGS)
    >>> list(space.simplify())
    ['layer_0', 'layer_1', 'layer_2', 'layer_3']
    """
    kwargs = dict(widths=list(widths) if isinstance(widths, (list, tuple)) else widths,
                  depths=list(depths) if isinstance(depths, (list, tuple)) else depths,
                  strides=list(strides) if isinstance(strides, (list, tuple)) else strides,
                  stem_channels=stem_channels, first_channels=first_channels, last_channels=last_channels,
                  num_classes=num_classes, in_channels=in_channels, input_size=input_size, width_mult=width_mult,
                  kernel_sizes=list(kernel_sizes) if isinstance(kernel_sizes, (list, tuple)) else kernel_sizes,
                  expand_ratios=list(expand_ratios) if isinstance(expand_ratios, (list, tuple)) else expand_ratios,
                  dropout=dropout)
    widths_t = check_int_sequence('widths', widths)
    depths_t = check_int_sequence('depths', depths, length=len(widths_t))
    strides_t = check_int_sequence('strides', strides, allowed=(1, 2), length=len(widths_t))
    for name in ('stem_channels', 'first_channels', 'last_channels', 'num_classes', 'in_channels', 'input_size'):
        check_positive_int(name, kwargs[name])
    wm = check_positive_float('width_mult', width_mult)
    ks = check_int_sequence('kernel_sizes', kernel_sizes)
    if any(k % 2 == 0 for k in ks) or len(set(ks)) != len(ks):
        raise ConfigError('space.kwargs.kernel_sizes', kernel_sizes, 'use distinct odd kernel sizes, e.g. [3, 5, 7]')
    es = check_int_sequence('expand_ratios', expand_ratios)
    if len(set(es)) != len(es):
        raise ConfigError('space.kwargs.expand_ratios', expand_ratios, 'use distinct expansion ratios, e.g. [3, 6]')
    check_probability('dropout', dropout)

    last = _scale(last_channels, wm) if wm > 1.0 else last_channels
    space = MobileNetSpace(widths=[_scale(w, wm) for w in widths_t], depths=depths_t, strides=strides_t,
                           stem_channels=_scale(stem_channels, wm), first_channels=_scale(first_channels, wm),
                           last_channels=last, num_classes=num_classes, in_channels=in_channels,
                           kernel_sizes=ks, expand_ratios=es, dropout=dropout)
    return tag_space(space, 'mobilenet', kwargs, (in_channels, input_size, input_size))
