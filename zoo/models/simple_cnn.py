"""The course's small CNNs for 32 px images: the baseline, its batch-norm version, the all-strided
version (Springenberg et al. 2015) and an SE version.

All share one head: an adaptive 4x4 average pool, then 64*4*4 -> 500 -> classes with ReLU and
dropout. At 32 px the pool is the identity (three 2x downsamplings leave 4x4), so the network is the
course's flatten-and-MLP one; other sizes >= 8 px are averaged (or, below 32, repeated) to 4x4.
``se=True`` adds an SE block (reduction 4: the layers are narrow) at the end of every conv block.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.models.blocks import ConvBNAct, ConvNet, SqueezeExcite, init_weights

WIDTHS = (16, 32, 64)
HIDDEN = 500
SE_REDUCTION = 4


def _conv_block(
    in_channels: int, out_channels: int, batch_norm: bool, se: bool, dropout: float
) -> nn.Sequential:
    """3x3 conv -> [BN] -> 2x2 max-pool -> ReLU -> [SE] -> dropout."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.MaxPool2d(2, 2), nn.ReLU()]
    if se:
        layers.append(SqueezeExcite(out_channels, out_channels // SE_REDUCTION))
    layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _net(features: nn.Sequential, channels: int, num_classes: int, dropout: float) -> ConvNet:
    head = nn.Sequential(
        nn.Linear(channels * 4 * 4, HIDDEN), nn.ReLU(), nn.Dropout(dropout), nn.Linear(HIDDEN, num_classes)
    )
    return init_weights(ConvNet(features, nn.AdaptiveAvgPool2d((4, 4)), head))


def simple_cnn(
    num_classes: int = 1000,
    in_channels: int = 3,
    batch_norm: bool = False,
    se: bool = False,
    dropout: float = 0.25,
) -> nn.Module:
    """Three conv-pool-ReLU-dropout blocks (16-32-64 channels, 3x3 convs) and an MLP head;
    541,094 parameters at 10 classes."""
    blocks = []
    channels = in_channels
    for width in WIDTHS:
        blocks.append(_conv_block(channels, width, batch_norm, se, dropout))
        channels = width
    return _net(nn.Sequential(*blocks), channels, num_classes, dropout)


def simple_cnn_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """``simple_cnn`` with BatchNorm after each conv, before pooling, activation and dropout."""
    return simple_cnn(num_classes, in_channels, **{"batch_norm": True, **kwargs})


def se_simple_cnn(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """``simple_cnn`` with an SE block at the end of each conv block."""
    return simple_cnn(num_classes, in_channels, **{"se": True, **kwargs})


def strided_cnn(
    num_classes: int = 1000, in_channels: int = 3, se: bool = False, dropout: float = 0.25
) -> nn.Module:
    """No pooling: stride-2 conv-BN-ReLU layers with doubling filters (5x5 first kernel, then 3x3),
    16-32-64 like ``simple_cnn``, so the two differ only in how they downsample."""
    layers: list[nn.Module] = []
    channels = in_channels
    for i, width in enumerate(WIDTHS):
        layers.append(ConvBNAct(channels, width, 5 if i == 0 else 3, 2))
        if se:
            layers.append(SqueezeExcite(width, width // SE_REDUCTION))
        channels = width
    return _net(nn.Sequential(*layers), channels, num_classes, dropout)
