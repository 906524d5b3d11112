"""Building blocks shared by every family, written once.

Every zoo network is a :class:`ConvNet`: ``features`` (the convolutional trunk), ``pool``,
``flatten`` and ``classifier`` (whose last module is the ``Linear`` over the classes). One shape
lets training replace heads, ``zoo info`` walk blocks and exporters trace anything the same way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

ConvInitMode = Literal["fan_in", "fan_out"]  # Kaiming modes: keep the gradients' or the signal's scale

Layer = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down
    (the TensorFlow MobileNet rule, so width multipliers give the published networks)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNAct(nn.Sequential):
    """Conv (same padding) -> optional norm -> optional activation.

    The conv has a bias only when there is no norm, unless ``bias`` says otherwise (VGG-BN keeps it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: Layer | None = nn.ReLU,
        norm: Layer | None = nn.BatchNorm2d,
        bias: bool | None = None,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=norm is None if bias is None else bias,
            )
        ]
        if norm is not None:
            layers.append(norm(out_channels))
        if act is not None:
            layers.append(act())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al. 2018): global pool, bottleneck of two 1x1 convs, gate, rescale.

    ``gate=nn.Hardsigmoid`` gives MobileNetV3's variant; 1x1 convs with bias count like the
    paper's fully connected layers.
    """

    def __init__(
        self, channels: int, squeeze_channels: int, act: Layer = nn.ReLU, gate: Layer = nn.Sigmoid
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * scale


class PadShortcut(nn.Module):
    """ResNet paper option A: subsample, then zero-pad the new channels; no parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra))


def shortcut(in_channels: int, out_channels: int, stride: int, option: str = "B") -> nn.Module:
    """Identity where shapes agree, else option "A" (zero padding) or "B" (1x1 projection + BN)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if option == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return ConvBNAct(in_channels, out_channels, 1, stride, act=None)


class Residual(nn.Module):
    """``act(se(branch(x)) + shortcut(x))``: no activation at the end of the branch, SE (when on)
    on the branch before the add, ReLU after the add. Subclasses say what the branch is."""

    expansion = 1

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, se: bool = False, shortcut_option: str = "B"
    ) -> None:
        super().__init__()
        out = width * self.expansion
        self.branch = self.make_branch(in_channels, width, out, stride)
        self.se = SqueezeExcite(out, max(1, out // 16)) if se else nn.Identity()
        self.shortcut = shortcut(in_channels, out, stride, shortcut_option)
        self.act = nn.ReLU()

    @staticmethod
    def make_branch(in_channels: int, width: int, out_channels: int, stride: int) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.branch(x)) + self.shortcut(x))


class BasicBlock(Residual):
    """Two 3x3 convs (ResNet-18/34 and the CIFAR ResNets)."""

    expansion = 1

    @staticmethod
    def make_branch(in_channels: int, width: int, out_channels: int, stride: int) -> nn.Module:
        return nn.Sequential(
            ConvBNAct(in_channels, width, 3, stride), ConvBNAct(width, out_channels, 3, act=None)
        )


class Bottleneck(Residual):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's ResNet v1.5), 1x1 expand by 4."""

    expansion = 4

    @staticmethod
    def make_branch(in_channels: int, width: int, out_channels: int, stride: int) -> nn.Module:
        return nn.Sequential(
            ConvBNAct(in_channels, width, 1),
            ConvBNAct(width, width, 3, stride),
            ConvBNAct(width, out_channels, 1, act=None),
        )


def residual_stage(
    block: type[Residual],
    in_channels: int,
    width: int,
    blocks: int,
    stride: int,
    se: bool = False,
    shortcut_option: str = "B",
) -> nn.Sequential:
    """``blocks`` residual blocks; the first one changes stride and width."""
    layers = []
    for i in range(blocks):
        layers.append(block(in_channels, width, stride if i == 0 else 1, se, shortcut_option))
        in_channels = width * block.expansion
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand (skipped when ``expanded == in``), depthwise k x k,
    optional hard-sigmoid SE, linear 1x1 projection; identity skip when shapes agree."""

    def __init__(
        self,
        in_channels: int,
        expanded: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: Layer = nn.ReLU6,
        se: bool = False,
        norm: Layer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvBNAct(in_channels, expanded, 1, act=act, norm=norm))
        layers.append(ConvBNAct(expanded, expanded, kernel_size, stride, groups=expanded, act=act, norm=norm))
        if se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded // 4), gate=nn.Hardsigmoid))
        layers.append(ConvBNAct(expanded, out_channels, 1, act=None, norm=norm))
        self.block = nn.Sequential(*layers)
        self.use_skip = stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_skip else out


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1 block: depthwise 3x3 (carrying the stride), then pointwise 1x1, each BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels),
            ConvBNAct(in_channels, out_channels, 1),
        )
        self.out_channels = out_channels


class ConvNet(nn.Sequential):
    """``features -> pool -> flatten -> classifier``: the one shape of every zoo model."""

    def __init__(self, features: nn.Module, pool: nn.Module, classifier: nn.Module) -> None:
        super().__init__(
            OrderedDict(features=features, pool=pool, flatten=nn.Flatten(1), classifier=classifier)
        )


def init_weights(
    model: nn.Module, linear_std: float | None = None, conv_mode: ConvInitMode = "fan_out"
) -> nn.Module:
    """torchvision's initialisation: Kaiming-normal (fan_out, ReLU gain) convs with zero bias,
    norm layers 1/0, and Linear N(0, ``linear_std``) with zero bias (None keeps PyTorch's default).

    ``conv_mode="fan_in"`` is for a deep network without normalisation: fan_out keeps the gradients'
    scale but not the signal's, which shrinks layer after layer when nothing renormalises it."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)
    return model
