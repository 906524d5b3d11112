"""DataLoaders for training and evaluation.

Each split is an ``ImageSet`` that builds whole batches (``__getitems__``): evaluation
batches are one vectorised normalisation of cached uint8 pixels, training batches run the
augmentation per image first. Pixels and normalisation come from zoo.runtime.preprocess, so
the eval batches equal what the edge runtime computes, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from zoo.data.images import base_array, decode_all
from zoo.data.splits import DataSplits, SampleSet
from zoo.data.transforms import check_augment, train_transform
from zoo.errors import ZooUsageError
from zoo.registry import check_positive
from zoo.runtime.preprocess import normalize

CACHE_MODES = ("auto", "on", "off")
CACHE_LIMIT_BYTES = 2 * 1024**3  # --cache auto holds the decoded splits when they fit in this


class ImageSet(Dataset):
    """One split: uint8 SxSxC pixels (cached, or decoded per item), augmented per image by
    ``transform`` (PIL -> PIL, training only), then normalised per batch with
    zoo.runtime.preprocess.normalize; yields (float32 NCHW, int64 N) batches."""

    def __init__(self, samples: SampleSet, preprocessing: dict[str, Any], *, side: int,
                 transform: Any = None, cache: bool = True) -> None:
        self.samples = samples
        self.channels = int(preprocessing["channels"])
        self.resize = int(preprocessing["resize"])
        self.side = side
        self.interpolation = preprocessing.get("interpolation", "bilinear")
        self.mean, self.std = list(preprocessing["mean"]), list(preprocessing["std"])
        self.transform = transform
        self.labels = torch.tensor(samples.labels, dtype=torch.int64)
        self.pixels: np.ndarray | None = None
        if cache:
            self.pixels = decode_all(samples, list(range(len(samples))), self.channels, self.resize, side,
                                     self.interpolation)

    def __len__(self) -> int:
        return len(self.samples)

    def _pixels(self, index: int) -> np.ndarray:
        if self.pixels is not None:
            return self.pixels[index]
        return base_array(self.samples, index, self.channels, self.resize, self.side, self.interpolation)

    def _augment(self, pixels: np.ndarray) -> np.ndarray:
        image = self.transform(Image.fromarray(pixels[:, :, 0] if self.channels == 1 else pixels))
        out = np.asarray(image, dtype=np.uint8)
        return out[:, :, None] if out.ndim == 2 else out

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        if self.transform is not None:
            batch = np.stack([self._augment(self._pixels(i)) for i in index])
        elif self.pixels is not None:
            batch = self.pixels[index]
        else:
            batch = np.stack([self._pixels(i) for i in index])
        return torch.from_numpy(normalize(batch, self.mean, self.std)), self.labels[torch.from_numpy(index)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([index])
        return images[0], labels[0]


def _as_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``ImageSet.__getitems__`` already returns the batch; nothing to collate."""
    return batch


def _check(batch_size: int, workers: int | None, cache: str) -> int:
    check_positive("batch size", batch_size)
    if cache not in CACHE_MODES:
        raise ZooUsageError(f"--cache must be one of {', '.join(CACHE_MODES)}, got '{cache}'")
    if workers is None:
        return os.cpu_count() or 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ZooUsageError(f"--workers must be 0 or a positive integer, got {workers!r}")
    return workers


def _fits(sets: Sequence[SampleSet | None], side: int, channels: int, cache: str) -> bool:
    if cache != "auto":
        return cache == "on"
    return sum(len(s) for s in sets if s is not None) * side * side * channels <= CACHE_LIMIT_BYTES


def _loader(dataset: ImageSet, *, batch_size: int, workers: int, device: str, shuffle: bool = False,
            seed: int = 0) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(dataset) > batch_size,  # no size-1 batch for BatchNorm
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=str(device).startswith("cuda"),
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
        collate_fn=_as_batch,
    )


def _eval_set(samples: SampleSet, preprocessing: dict[str, Any], cache: bool) -> ImageSet:
    return ImageSet(samples, preprocessing, side=int(preprocessing["crop"]), cache=cache)


def make_loaders(splits: DataSplits, preprocessing: dict[str, Any], *, augment: str = "standard",
                 batch_size: int = 64, workers: int | None = None, cache: str = "auto",
                 device: str = "cpu", seed: int = 0) -> tuple[DataLoader, DataLoader, DataLoader | None]:
    """(train, val, test or None). Train is shuffled (seeded) and augmented; val/test use the
    eval pipeline. Cached eval splits need no workers: a batch is one indexing + normalisation."""
    check_augment(augment)
    workers = _check(batch_size, workers, cache)
    channels, crop = int(preprocessing["channels"]), int(preprocessing["crop"])
    resize = int(preprocessing["resize"])
    cached = _fits([splits.train, splits.val, splits.test], resize, channels, cache)
    if augment == "none":
        train_set = _eval_set(splits.train, preprocessing, cached)
    else:
        transform = train_transform(augment, crop=crop, side=resize, channels=channels, hflip=splits.hflip)
        train_set = ImageSet(splits.train, preprocessing, side=resize, transform=transform, cache=cached)
    eval_workers = 0 if cached else workers
    train = _loader(train_set, batch_size=batch_size, workers=workers, device=device, shuffle=True, seed=seed)
    val = _loader(_eval_set(splits.val, preprocessing, cached), batch_size=batch_size, workers=eval_workers,
                  device=device)
    test = None
    if splits.test is not None:
        test = _loader(_eval_set(splits.test, preprocessing, cached), batch_size=batch_size,
                       workers=eval_workers, device=device)
    return train, val, test


def make_eval_loader(samples: SampleSet, preprocessing: dict[str, Any], *, batch_size: int = 128,
                     workers: int | None = None, cache: str = "auto", device: str = "cpu") -> DataLoader:
    """One set through the eval pipeline, in order (``zoo eval --data DIR``)."""
    workers = _check(batch_size, workers, cache)
    crop, channels = int(preprocessing["crop"]), int(preprocessing["channels"])
    cached = _fits([samples], crop, channels, cache)
    return _loader(_eval_set(samples, preprocessing, cached), batch_size=batch_size,
                   workers=0 if cached else workers, device=device)
