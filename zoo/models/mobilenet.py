"""MobileNets: depthwise-separable V1 (Howard et al. 2017), inverted-residual V2 (Sandler et al. 2018)
and V3 small/large (Howard et al. 2019), V2 and V3 equal to torchvision's to the parameter.

Options for every builder here:

- ``width_mult``: scales every layer's channels (rounded to multiples of 8, the TensorFlow rule).
- ``small_input=True``: the stem conv gets stride 1 instead of 2 (16x downsampling instead of 32x),
  for 28-32 px images.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from zoo.models.blocks import (
    ConvBNAct,
    ConvNet,
    DepthwiseSeparable,
    InvertedResidual,
    init_weights,
    make_divisible,
)

# V1: (output channels, stride) of the 13 depthwise-separable blocks after the 32-channel stem.
V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip

# V2: expansion t, output channels c, repeats n, first stride s.
V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

# V3: kernel, expanded channels, output channels, SE, hard-swish (else ReLU), stride.
V3_SMALL = (
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
)  # fmt: skip
V3_LARGE = (
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
)  # fmt: skip


def _stem_stride(small_input: bool) -> int:
    return 1 if small_input else 2


def mobilenet_v1(
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,
    small_input: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    """MobileNetV1: 3x3 stem then 13 depthwise-separable blocks (BN + ReLU everywhere);
    4,231,976 parameters at 1000 classes and ``width_mult=1.0``."""
    channels = make_divisible(32 * width_mult)
    layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, _stem_stride(small_input))]
    for out, stride in V1_BLOCKS:
        out = make_divisible(out * width_mult)
        layers.append(DepthwiseSeparable(channels, out, stride))
        channels = out
    classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
    return init_weights(ConvNet(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), classifier), 0.01)


def mobilenet_v2(
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,
    small_input: bool = False,
    dropout: float = 0.2,
) -> nn.Module:
    """MobileNetV2: ReLU6 inverted residuals with linear bottlenecks; 3,504,872 parameters."""
    channels = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, _stem_stride(small_input), act=nn.ReLU6)]
    for t, c, n, s in V2_STAGES:
        out = make_divisible(c * width_mult)
        for i in range(n):
            layers.append(InvertedResidual(channels, round(channels * t), out, 3, s if i == 0 else 1))
            channels = out
    layers.append(ConvBNAct(channels, last, 1, act=nn.ReLU6))
    classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
    return init_weights(ConvNet(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), classifier), 0.01)


def mobilenet_v3(
    config: tuple[tuple[int, int, int, bool, bool, int], ...],
    last_channel: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,
    small_input: bool = False,
    dropout: float = 0.2,
) -> ConvNet:
    """MobileNetV3 from a block table: hard-swish stem, inverted residuals with hard-sigmoid SE,
    a 1x1 conv to 6x the last width, then a hard-swish MLP head. BatchNorm eps 1e-3 as published, but
    PyTorch's default momentum 0.1 (as timm), not torchvision's 0.01: with 0.01 the running statistics
    trail the weights for thousands of steps, so a short run on a small data set evaluated at chance
    (digits, 6 epochs: 9.8% val; 95.8% with the statistics recomputed). Parameters are unchanged."""
    norm = partial(nn.BatchNorm2d, eps=0.001)
    channels = make_divisible(16 * width_mult)
    layers: list[nn.Module] = [
        ConvBNAct(in_channels, channels, 3, _stem_stride(small_input), act=nn.Hardswish, norm=norm)
    ]
    for kernel, expanded, out, se, hard_swish, stride in config:
        out = make_divisible(out * width_mult)
        act = nn.Hardswish if hard_swish else nn.ReLU
        expanded = make_divisible(expanded * width_mult)
        layers.append(InvertedResidual(channels, expanded, out, kernel, stride, act, se, norm))
        channels = out
    layers.append(ConvBNAct(channels, 6 * channels, 1, act=nn.Hardswish, norm=norm))
    last = make_divisible(last_channel * width_mult)
    classifier = nn.Sequential(
        nn.Linear(6 * channels, last), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(last, num_classes)
    )
    return init_weights(ConvNet(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), classifier), 0.01)


def mobilenet_v3_small(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """MobileNetV3-Small: 11 blocks, 1024-wide head; 2,542,856 parameters at 1000 classes."""
    return mobilenet_v3(V3_SMALL, 1024, num_classes, in_channels, **kwargs)


def mobilenet_v3_large(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """MobileNetV3-Large: 15 blocks, 1280-wide head; 5,483,032 parameters at 1000 classes."""
    return mobilenet_v3(V3_LARGE, 1280, num_classes, in_channels, **kwargs)
