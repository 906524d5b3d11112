"""ResNets (He et al. 2016): the ImageNet ResNet-18..152, their SE variants, and the CIFAR ResNet-20..56.

The ImageNet networks equal torchvision's to the parameter (v1.5: the stride sits on the
bottleneck's 3x3 conv). Options for every builder here:

- ``se=True``: a squeeze-and-excitation block (reduction 16) on each residual branch, before the add.
- ``small_input=True`` (ImageNet networks): a 3x3 stride-1 stem and no max-pool, so the network
  downsamples 8x instead of 32x and 28-32 px images keep spatial detail (the usual CIFAR ResNet-18).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.models.blocks import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    ConvNet,
    Residual,
    init_weights,
    residual_stage,
)


def resnet(
    block: type[Residual],
    layers: tuple[int, ...],
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    se: bool = False,
) -> ConvNet:
    """An ImageNet-style ResNet: stem, four stages of 64-128-256-512 widths, global pool, linear."""
    if small_input:
        stem = ConvBNAct(in_channels, 64, 3)
    else:
        stem = nn.Sequential(ConvBNAct(in_channels, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
    stages: list[nn.Module] = [stem]
    channels = 64
    for i, (width, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        stages.append(residual_stage(block, channels, width, blocks, 1 if i == 0 else 2, se))
        channels = width * block.expansion
    model = ConvNet(nn.Sequential(*stages), nn.AdaptiveAvgPool2d(1), nn.Linear(channels, num_classes))
    return init_weights(model)


def cifar_resnet(
    depth: int, num_classes: int = 1000, in_channels: int = 3, se: bool = False, shortcut_option: str = "A"
) -> ConvNet:
    """The paper's CIFAR ResNet (section 4.2): 3x3 stem, three stages of n basic blocks at
    16-32-64 channels (depth = 6n + 2), option A (parameter-free) shortcuts, global pool, linear."""
    n = (depth - 2) // 6
    stages: list[nn.Module] = [ConvBNAct(in_channels, 16, 3)]
    channels = 16
    for i, width in enumerate((16, 32, 64)):
        stages.append(residual_stage(BasicBlock, channels, width, n, 1 if i == 0 else 2, se, shortcut_option))
        channels = width
    model = ConvNet(nn.Sequential(*stages), nn.AdaptiveAvgPool2d(1), nn.Linear(channels, num_classes))
    return init_weights(model)


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-18: basic blocks [2, 2, 2, 2]; 11,689,512 parameters at 1000 classes."""
    return resnet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-34: basic blocks [3, 4, 6, 3]; 21,797,672 parameters at 1000 classes."""
    return resnet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-50: bottlenecks [3, 4, 6, 3]; 25,557,032 parameters at 1000 classes."""
    return resnet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, **kwargs)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-101: bottlenecks [3, 4, 23, 3]; 44,549,160 parameters at 1000 classes."""
    return resnet(Bottleneck, (3, 4, 23, 3), num_classes, in_channels, **kwargs)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-152: bottlenecks [3, 8, 36, 3]; 60,192,808 parameters at 1000 classes."""
    return resnet(Bottleneck, (3, 8, 36, 3), num_classes, in_channels, **kwargs)


def se_resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """SE-ResNet-18: ResNet-18 with SE (reduction 16) on every branch; 11,778,592 parameters."""
    return resnet18(num_classes, in_channels, **{"se": True, **kwargs})


def se_resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """SE-ResNet-34: ResNet-34 with SE (reduction 16) on every branch; 21,958,868 parameters."""
    return resnet34(num_classes, in_channels, **{"se": True, **kwargs})


def se_resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """SE-ResNet-50: ResNet-50 with SE (reduction 16) on every branch; 28,088,024 parameters,
    the paper's 28.1M."""
    return resnet50(num_classes, in_channels, **{"se": True, **kwargs})


def resnet20(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """CIFAR ResNet-20 (n=3): 269,722 parameters at 10 classes (paper: 0.27M)."""
    return cifar_resnet(20, num_classes, in_channels, **kwargs)


def resnet32(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """CIFAR ResNet-32 (n=5): 464,154 parameters at 10 classes (paper: 0.46M)."""
    return cifar_resnet(32, num_classes, in_channels, **kwargs)


def resnet44(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """CIFAR ResNet-44 (n=7): 658,586 parameters at 10 classes (paper: 0.66M)."""
    return cifar_resnet(44, num_classes, in_channels, **kwargs)


def resnet56(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """CIFAR ResNet-56 (n=9): 853,018 parameters at 10 classes (paper: 0.85M)."""
    return cifar_resnet(56, num_classes, in_channels, **kwargs)
