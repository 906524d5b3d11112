"""Training augmentation presets (torchvision transforms v2) and mixup/cutmix.

A train transform maps a PIL image to a PIL image: it starts from the image with its shorter
side resized to the eval ``resize`` and center-cropped square (``side`` = resize, equal to the
crop for small images), so it sees the field of view of evaluation plus the crop margin, and
ends at ``crop`` x ``crop``. Scaling and normalisation follow per batch (zoo.data.loaders) with
zoo.runtime.preprocess.normalize. Augmenting PIL images, not tensors, is deliberate: on small
images RandomAffine takes about 0.1 ms in Pillow and 2 ms (or far more when CPU threads
contend) on a tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from zoo.errors import ZooUsageError

AUGMENT_PRESETS = ("none", "light", "standard", "randaugment", "trivialaugment")
MIXERS = ("mixup", "cutmix")


def check_augment(preset: str) -> None:
    if preset not in AUGMENT_PRESETS:
        raise ZooUsageError(f"--augment must be one of {', '.join(AUGMENT_PRESETS)}, got '{preset}'")


class ReflectRandomCrop:
    """``v2.RandomCrop(crop, padding, padding_mode="reflect")`` for PIL images, through numpy:
    the same result at a third of the cost, which dominates on small images."""

    def __init__(self, crop: int, padding: int) -> None:
        self.crop, self.padding = crop, padding

    def __call__(self, image: Image.Image) -> Image.Image:
        pixels = np.asarray(image)
        pad = [(self.padding, self.padding)] * 2 + [(0, 0)] * (pixels.ndim - 2)
        padded = np.pad(pixels, pad, mode="reflect")
        top, left = (int(torch.randint(0, n - self.crop + 1, (1,))) for n in padded.shape[:2])
        return Image.fromarray(padded[top:top + self.crop, left:left + self.crop])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop={self.crop}, padding={self.padding})"


def crop_padding(crop: int, side: int) -> int:
    """Random crops come from the margin of large images, from reflect padding of crop/8 on small ones."""
    return 0 if side > crop else max(1, crop // 8)


def _random_crop(crop: int, side: int) -> Any:
    padding = crop_padding(crop, side)
    return ReflectRandomCrop(crop, padding) if padding else v2.RandomCrop(crop)


def train_transform(preset: str, *, crop: int, side: int, channels: int, hflip: bool = True) -> v2.Compose:
    """PIL image ``side`` x ``side`` -> PIL image ``crop`` x ``crop``, augmented per ``preset``."""
    check_augment(preset)
    flip = [v2.RandomHorizontalFlip()] if hflip else []
    if preset == "none":
        steps: list[Any] = [v2.CenterCrop(crop)]
    elif preset == "light":
        steps = [v2.RandomResizedCrop(crop, scale=(0.6, 1.0), antialias=True), *flip]
    elif preset == "standard":  # the course pipeline
        steps = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))]
        if channels == 3:
            steps.append(v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2))
        steps += [*flip, _random_crop(crop, side)]
    elif preset == "randaugment":
        steps = [_random_crop(crop, side), *flip, v2.RandAugment()]
    else:
        steps = [_random_crop(crop, side), *flip, v2.TrivialAugmentWide()]
    return v2.Compose(steps)


def batch_mixer(kind: str | None, num_classes: int, alpha: float = 1.0) -> Callable[..., Any] | None:
    """``mixup``, ``cutmix`` or ``mixup,cutmix`` (one picked per batch): a callable
    (images, int labels) -> (images, soft labels NxK); None or "none" -> None."""
    if kind is None or kind.strip() in ("", "none"):
        return None
    names = [k.strip() for k in kind.split(",") if k.strip()]
    bad = [k for k in names if k not in MIXERS]
    if bad or len(set(names)) != len(names):
        raise ZooUsageError(f"--mix must be mixup, cutmix or mixup,cutmix, got '{kind}'")
    if alpha <= 0:
        raise ZooUsageError(f"mix alpha must be positive, got {alpha!r}")
    if num_classes < 2:
        raise ZooUsageError(f"mixing needs two or more classes, got {num_classes}")
    mixers = [(v2.MixUp if k == "mixup" else v2.CutMix)(alpha=alpha, num_classes=num_classes) for k in names]
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)
