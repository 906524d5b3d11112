"""Image size, normalisation statistics and the eval preprocessing spec a run saves.

The spec is what zoo.runtime.preprocess replays at export and on the edge, so it is the
single description of the eval pipeline.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.data.images import decode_all
from zoo.data.splits import SampleSet
from zoo.errors import ZooUsageError

SMALL_IMAGE = 64  # native size up to which images are only resized, never center-cropped
CROP_FRACTION = 0.875  # larger images: resize to crop / 0.875, then center-crop (the ImageNet habit)
MIN_IMAGE_SIZE = 32
STATS_SAMPLES = 10_000  # mean/std from at most this many training images (a seeded sample) ...
STATS_PIXELS = 50_000_000  # ... and at most about this many pixels, but never fewer than 500 images
STATS_CHUNK = 512
NORM_KINDS = ("dataset", "imagenet", "half")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_image_size(native_size: int, arch_image_size: int) -> int:
    """Small images are not blown up to 224: 8x8 and 28x28 train at 32, 50 px at 56;
    images at least as large as the architecture's default train at that default."""
    if native_size >= arch_image_size:
        return arch_image_size
    return min(arch_image_size, max(MIN_IMAGE_SIZE, 8 * math.ceil(native_size / 8)))


def resize_for(image_size: int, native_size: int) -> int:
    """Shorter side before the center crop: no margin for small images (nothing to spare)."""
    return image_size if native_size <= SMALL_IMAGE else round(image_size / CROP_FRACTION)


def eval_preprocessing(image_size: int, channels: int, mean: list[float] | tuple[float, ...],
                       std: list[float] | tuple[float, ...], native_size: int) -> dict:
    """The spec dict for zoo.runtime.preprocess, saved as config["preprocessing"]."""
    if channels not in (1, 3):
        raise ZooUsageError(f"channels must be 1 or 3, got {channels!r}")
    if len(mean) != channels or len(std) != channels:
        raise ZooUsageError(f"mean/std need {channels} value(s), got {len(mean)}/{len(std)}")
    return {
        "resize": resize_for(image_size, native_size),
        "crop": image_size,
        "channels": channels,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "interpolation": "bilinear",
    }


def compute_mean_std(train: SampleSet, channels: int, image_size: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) of the training images at ``image_size``;
    a seeded sample when the split is large (10,000 small images, 500+ large ones)."""
    budget = min(STATS_SAMPLES, max(500, STATS_PIXELS // (image_size * image_size * channels)))
    indices = list(range(len(train)))
    if len(indices) > budget:
        indices = sorted(np.random.default_rng(0).choice(len(train), budget, replace=False).tolist())
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(indices), STATS_CHUNK):
        part = indices[start:start + STATS_CHUNK]
        chunk, failed = decode_all(train, part, channels, image_size, image_size)
        chunk = np.delete(chunk, failed, axis=0)  # unreadable files (a folder not checked up front)
        x = chunk.reshape(-1, channels).astype(np.float64) / 255.0
        total += x.sum(axis=0)
        squares += (x * x).sum(axis=0)
        count += len(chunk) * image_size * image_size
    if count == 0:
        raise ZooUsageError("none of the training images sampled for --norm dataset could be decoded")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


def norm_stats(kind: str, train: SampleSet, channels: int,
               image_size: int) -> tuple[list[float], list[float]]:
    """``--norm dataset`` (computed), ``imagenet`` (its constants; averaged for 1 channel), ``half``."""
    if kind == "dataset":
        return compute_mean_std(train, channels, image_size)
    if kind == "imagenet":
        if channels == 1:
            return [round(sum(IMAGENET_MEAN) / 3, 6)], [round(sum(IMAGENET_STD) / 3, 6)]
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if kind == "half":
        return [0.5] * channels, [0.5] * channels
    raise ZooUsageError(f"--norm must be one of {', '.join(NORM_KINDS)}, got '{kind}'")
