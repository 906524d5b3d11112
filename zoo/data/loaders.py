"""The loaders of training and evaluation: uint8 pixels in, normalised batches on the device out.

Each split is an ``ImageSet`` of uint8 SxSxC pixels (cached, or decoded per item by DataLoader
workers); zoo.data.batches turns it into batches on the training device, augmented there
(``--pipeline batched``) or per image in PIL by the workers (``pil``). Pixels come from
zoo.runtime.preprocess and are normalised with its float32 operations, so the eval batches equal
what the edge runtime computes, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from zoo.data.batched import BatchAugment
from zoo.data.batches import (
    DeviceBatches,
    EpochOrder,
    Resident,
    Streamed,
    check_pipeline,
    fits_on_device,
    resolve_pipeline,
)
from zoo.data.images import base_array, decode_all, warn_unreadable
from zoo.data.splits import DataSplits, SampleSet
from zoo.data.transforms import check_augment, train_transform
from zoo.errors import ZooUsageError
from zoo.registry import check_positive
from zoo.runtime.preprocess import ImageError

CACHE_MODES = ("auto", "on", "off")
CACHE_LIMIT_BYTES = 2 * 1024**3  # --cache auto holds the decoded splits when they fit in this


class ImageSet(Dataset):
    """One split as uint8 SxSxC pixels (cached, or decoded per item), optionally augmented per image
    by ``transform`` (PIL -> PIL, the ``pil`` pipeline); yields (uint8 NHWC, int64 N) batches.
    A file that cannot be decoded (zoo.data.images) is left out of an evaluation set. In a training set
    (``fill``) another image takes its place, so every process of a distributed run keeps the same
    number of batches and steps (DDP waits for all of them at every step)."""

    def __init__(self, samples: SampleSet, preprocessing: dict[str, Any], *, side: int,
                 transform: Any = None, cache: bool = True, fill: bool = False) -> None:
        self.samples = samples
        self.channels = int(preprocessing["channels"])
        self.resize = int(preprocessing["resize"])
        self.side = side
        self.interpolation = preprocessing.get("interpolation", "bilinear")
        self.transform = transform
        self.fill = fill
        self.labels = torch.tensor(samples.labels, dtype=torch.int64)
        self.pixels: np.ndarray | None = None
        if cache:
            self.pixels, failed = decode_all(samples, list(range(len(samples))), self.channels, self.resize,
                                             side, self.interpolation)
            if failed:
                self._drop_or_fill(failed)

    def _drop_or_fill(self, failed: list[int]) -> None:
        """Cached rows that could not be decoded: copies of readable rows (``fill``), or removed."""
        assert self.pixels is not None
        kept = sorted(set(range(len(self.samples))) - set(failed))
        if not kept:
            raise ZooUsageError(f"none of the {len(self.samples)} images of a split could be decoded")
        if self.fill:
            for k, pos in enumerate(failed):
                source = kept[k % len(kept)]
                self.pixels[pos], self.labels[pos] = self.pixels[source], self.labels[source]
        else:
            self.samples, self.pixels = self.samples.subset(kept), self.pixels[kept]
            self.labels = self.labels[kept]

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

    def _readable(self, index: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The indices whose files decode, and their pixels; with ``fill``, an unreadable index is
        replaced by the next one that decodes."""
        kept, pixels = [], []
        for i in index:
            tries = range(int(i), int(i) + len(self)) if self.fill else (int(i),)
            for j in (t % len(self) for t in tries):
                try:
                    pixels.append(self._pixels(j))
                except ImageError as error:
                    warn_unreadable(error)
                    continue
                kept.append(j)
                break
        if self.fill and len(kept) < len(index):
            raise ZooUsageError(f"none of the {len(self)} training images could be decoded")
        return np.asarray(kept, dtype=np.int64), pixels

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        if self.pixels is not None:
            batch = self.pixels[index]
            if self.transform is not None:
                batch = np.stack([self._augment(p) for p in batch])
        else:
            index, pixels = self._readable(index)
            if self.transform is not None:
                pixels = [self._augment(p) for p in pixels]
            empty = np.empty((0, self.side, self.side, self.channels), np.uint8)
            batch = np.stack(pixels) if pixels else empty
        return torch.from_numpy(batch), self.labels[torch.from_numpy(index)]

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


def _batches(dataset: ImageSet, preprocessing: dict[str, Any], *, resident: bool, batch_size: int,
             workers: int, device: str, shuffle: bool = False, seed: int = 0, augment: Any = None,
             pipeline: str = "batched") -> DeviceBatches:
    """A split on the device (indexed there) when ``resident``, else streamed by DataLoader workers."""
    drop_last = shuffle and len(dataset) > batch_size  # no size-1 batch for BatchNorm
    source: Resident | Streamed
    if resident and dataset.pixels is not None and dataset.transform is None:
        pixels = torch.from_numpy(dataset.pixels).to(device)
        source = Resident(pixels, dataset.labels.to(device), batch_size=batch_size, drop_last=drop_last)
    else:
        sampler = EpochOrder(len(dataset))
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=str(device).startswith("cuda"),
            generator=torch.Generator(),  # seeds the workers; reseeded by DeviceBatches every pass
            collate_fn=_as_batch,
        )
        source = Streamed(loader, sampler)
    return DeviceBatches(source, device=device, mean=preprocessing["mean"], std=preprocessing["std"],
                         shuffle=shuffle, seed=seed, augment=augment, pipeline=pipeline, dataset=dataset)


def _nbytes(sets: Sequence[ImageSet]) -> int:
    return sum(s.pixels.nbytes for s in sets if s.pixels is not None)


def make_loaders(splits: DataSplits, preprocessing: dict[str, Any], *, augment: str = "standard",
                 batch_size: int = 64, workers: int | None = None, cache: str = "auto",
                 device: str = "cpu", seed: int = 0,
                 pipeline: str = "auto") -> tuple[DeviceBatches, DeviceBatches, DeviceBatches | None]:
    """(train, val, test or None). Train is shuffled (seeded) and augmented; val/test use the eval
    pipeline. Cached splits that fit on the device live there and need no workers."""
    check_augment(augment)
    check_pipeline(pipeline)
    workers = _check(batch_size, workers, cache)
    channels, crop = int(preprocessing["channels"]), int(preprocessing["crop"])
    resize = int(preprocessing["resize"])
    pipeline = resolve_pipeline(pipeline, device, crop)
    cached = _fits([splits.train, splits.val, splits.test], resize, channels, cache)
    side = crop if augment == "none" else resize  # 'none' trains on the eval pixels
    transform = None
    if augment != "none" and pipeline == "pil":
        transform = train_transform(augment, crop=crop, side=side, channels=channels, hflip=splits.hflip)
    train_set = ImageSet(splits.train, preprocessing, side=side, transform=transform, cache=cached, fill=True)
    eval_sets = [ImageSet(s, preprocessing, side=crop, cache=cached)
                 for s in (splits.val, splits.test) if s is not None]
    resident = cached and fits_on_device(_nbytes([train_set, *eval_sets]), device)
    batched = None
    if augment != "none" and pipeline == "batched":
        batched = BatchAugment(augment, crop=crop, side=side, channels=channels, hflip=splits.hflip)
    options = {"resident": resident, "batch_size": batch_size, "device": device, "pipeline": pipeline}
    train = _batches(train_set, preprocessing, workers=workers, shuffle=True, seed=seed, augment=batched,
                     **options)
    eval_workers = 0 if cached else workers
    val, *test = [_batches(s, preprocessing, workers=eval_workers, **options) for s in eval_sets]
    return train, val, (test[0] if test else None)


def make_eval_loader(samples: SampleSet, preprocessing: dict[str, Any], *, batch_size: int = 128,
                     workers: int | None = None, cache: str = "auto", device: str = "cpu") -> DeviceBatches:
    """One set through the eval pipeline, in order (``zoo eval --data DIR``)."""
    workers = _check(batch_size, workers, cache)
    crop, channels = int(preprocessing["crop"]), int(preprocessing["channels"])
    cached = _fits([samples], crop, channels, cache)
    dataset = ImageSet(samples, preprocessing, side=crop, cache=cached)
    resident = cached and fits_on_device(_nbytes([dataset]), device)
    return _batches(dataset, preprocessing, resident=resident, batch_size=batch_size,
                    workers=0 if cached else workers, device=device)
