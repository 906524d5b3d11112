"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016), layer for layer as torchvision builds them,
so the parameter counts match: 1,248,424 and 1,235,496 at 1000 classes and 3 channels."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.errors import ZooUsageError


class Fire(nn.Module):
    """Squeeze with 1x1 convs, then expand with 1x1 and 3x3 convs side by side."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.squeeze(x))
        return torch.cat([self.act(self.expand1x1(x)), self.act(self.expand3x3(x))], 1)


def _pool() -> nn.MaxPool2d:
    # ceil_mode keeps the last partial window, as the Caffe original does
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class SqueezeNet(nn.Module):
    """Fire-module features, then a 1x1 conv to the classes and global average pooling.

    ``small_input=True`` gives the stem convolution stride 1 (half the downsampling), as zoo does
    for every ``imagenet``-tagged network on images of 64 px or less.

    The published head applies ReLU to the class maps before pooling, so logits are never
    negative. On small inputs the map is 1x1, and a class whose one value goes negative gets no
    gradient: training from scratch can stall at chance. zoo trains from scratch, so the default
    drops that ReLU (same parameters); ``head_relu=True`` restores the published head exactly.
    """

    def __init__(self, version: str, num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.5, head_relu: bool = False, small_input: bool = False) -> None:
        super().__init__()
        stem_stride = 1 if small_input else 2  # small images: keep the stem's resolution (zoo's imagenet tag)
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, kernel_size=7, stride=stem_stride), nn.ReLU(inplace=True), _pool(),
                Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), _pool(),
                Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256), _pool(),
                Fire(512, 64, 256, 256),
            )
        elif version == "1_1":
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, kernel_size=3, stride=stem_stride), nn.ReLU(inplace=True), _pool(),
                Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), _pool(),
                Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), _pool(),
                Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
            )
        else:
            raise ValueError(f"SqueezeNet version must be '1_0' or '1_1', got {version!r}")
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True) if head_relu else nn.Identity(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:  # small logits at the start, as in the original
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _build(version: str, num_classes: int, in_channels: int, kwargs: dict[str, Any]) -> SqueezeNet:
    options = {"dropout", "head_relu", "small_input"}
    unknown = sorted(set(kwargs) - options)
    if unknown:
        raise ZooUsageError(f"squeezenet{version} does not take {', '.join(unknown)}; "
                            f"options: {', '.join(sorted(options))}")
    return SqueezeNet(version, num_classes=num_classes, in_channels=in_channels, **kwargs)


def squeezenet1_0(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0: 7x7 stem, 1,248,424 parameters at 1000 classes."""
    return _build("1_0", num_classes, in_channels, kwargs)


def squeezenet1_1(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.1: 3x3 stem, pooling earlier, 1,235,496 parameters at 1000 classes."""
    return _build("1_1", num_classes, in_channels, kwargs)
