"""VGG-11/13/16/19 (Simonyan & Zisserman 2015), plain and with batch norm, equal to torchvision's.

The head is torchvision's: an adaptive 7x7 average pool, then 25088 -> 4096 -> 4096 -> classes
with ReLU and dropout. The adaptive pool is what lets any input size >= 32 px through (at 224 px it
is the identity) while keeping the standard parameter counts.

``small_input=True`` (what zoo picks for images of 64 px or less) is the usual small-image VGG:
the first max-pool is dropped (16x downsampling instead of 32x) and the head is a global average
pool, then 512 -> 512 -> classes. On a 2x2 final map torchvision's head only upsamples into a
25088-wide layer: vgg11_bn at 32 px has 128.8M parameters with it and 9.5M without, and trains
several times faster (benchmarks/RESULTS.md, "VGG on small images").
Convs keep their bias in the ``_bn`` variants, as torchvision's do. The weights start as torchvision's
but for the convs of the plain (no BatchNorm) networks: Kaiming fan_in, not fan_out, without which
they did not train (benchmarks/RESULTS.md, "VGG without BN").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from zoo.models.blocks import ConvBNAct, ConvInitMode, ConvNet, init_weights

SMALL_HEAD_WIDTH = 512  # the small-image head: global pool, then 512 -> 512 -> classes

# Conv widths per stage; every stage ends in a 2x2 max-pool.
STAGES: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def vgg(
    config: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    batch_norm: bool = False,
    small_input: bool = False,
    dropout: float = 0.5,
) -> ConvNet:
    """Build the VGG named by ``config`` (a key of :data:`STAGES`)."""
    layers: list[nn.Module] = []
    channels = in_channels
    init: ConvInitMode = "fan_out" if batch_norm else "fan_in"  # no BN: keep the signal
    for i, stage in enumerate(STAGES[config]):
        for width in stage:
            layers.append(
                ConvBNAct(channels, width, 3, norm=nn.BatchNorm2d if batch_norm else None, bias=True)
            )
            channels = width
        if not (small_input and i == 0):
            layers.append(nn.MaxPool2d(2, 2))
    if small_input:
        classifier = nn.Sequential(
            nn.Linear(channels, SMALL_HEAD_WIDTH),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(SMALL_HEAD_WIDTH, num_classes),
        )
        return init_weights(ConvNet(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), classifier), 0.01, init)
    classifier = nn.Sequential(
        nn.Linear(channels * 7 * 7, 4096),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )
    return init_weights(ConvNet(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7)), classifier), 0.01, init)


def _named(config: str, batch_norm: bool) -> Callable[..., nn.Module]:
    """The registry's builder for one configuration, e.g. ``vgg16_bn``."""
    name = f"{config}_bn" if batch_norm else config

    def build(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
        return vgg(config, num_classes, in_channels, batch_norm=batch_norm, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: torchvision's network, {PARAMS[name]:,} parameters at 1000 classes."
    return build


# Parameters at 1000 classes, equal to torchvision's.
PARAMS = {
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}

vgg11, vgg11_bn = _named("vgg11", False), _named("vgg11", True)
vgg13, vgg13_bn = _named("vgg13", False), _named("vgg13", True)
vgg16, vgg16_bn = _named("vgg16", False), _named("vgg16", True)
vgg19, vgg19_bn = _named("vgg19", False), _named("vgg19", True)
