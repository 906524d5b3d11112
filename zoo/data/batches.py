"""Batches on the training device: where the uint8 pixels live, how they are fed, and a loader clock.

Two pipelines (``--pipeline``):

- ``batched``: augmentation runs as batched tensor ops on the training device (zoo.data.batched).
  When the decoded uint8 splits fit on the device (CPU: the ``--cache auto`` limit; CUDA: a quarter
  of the free memory) they are held there as one tensor and batches are indexed there, with no
  DataLoader workers; otherwise workers only decode into (pinned, on CUDA) uint8 batches that are
  copied ``non_blocking`` and augmented on the device.
- ``pil``: workers augment each image in PIL (zoo.data.transforms), as zoo did before.

Either way a batch leaves as float32 NCHW normalised on the device (zoo.data.batched.normalize, the
same float32 operations as zoo.runtime.preprocess), with int64 labels on the device. Shuffling and
the augmentation draws come from one CPU ``torch.Generator`` per loader (``.generator``), which the
training loop reseeds every epoch, so a resumed run replays the batches it would have seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from zoo.errors import ZooUsageError

PIPELINES = ("auto", "batched", "pil")
RESIDENT_FRACTION = 0.25  # CUDA: hold the data on the device when it takes at most this much free memory
AUTO_BATCHED_MAX_SIZE = 64  # CPU: ``auto`` augments batched up to this image size, in PIL above it


def check_pipeline(pipeline: str) -> None:
    if pipeline not in PIPELINES:
        raise ZooUsageError(f"--pipeline must be one of {', '.join(PIPELINES)}, got '{pipeline}'")


def resolve_pipeline(pipeline: str, device: str, image_size: int) -> str:
    """``auto``: batched on CUDA; on CPU batched for images up to 64 px, where it measured faster than
    PIL in workers, and PIL above (benchmarks/RESULTS.md, "The training input pipeline")."""
    check_pipeline(pipeline)
    if pipeline != "auto":
        return pipeline
    if str(device).startswith("cuda") or image_size <= AUTO_BATCHED_MAX_SIZE:
        return "batched"
    return "pil"


def fits_on_device(nbytes: int, device: str) -> bool:
    """Whether ``nbytes`` of uint8 pixels may live on ``device`` (the CPU's limit is the caller's)."""
    if not str(device).startswith("cuda"):
        return True
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return nbytes <= RESIDENT_FRACTION * free


class LoaderClock:
    """Seconds spent getting batches ready (waiting for workers, copying, augmenting, normalising).

    On CUDA the interval is measured with events, which time the device work queued in it without
    forcing a synchronisation; it is read after the training step has synchronised anyway.
    """

    def __init__(self, device: str) -> None:
        self.cuda = str(device).startswith("cuda")
        self.reset()

    def reset(self) -> None:
        self._seconds = 0.0
        self._pending: list[tuple[Any, Any]] = []
        self._start: Any = None
        self.images = 0

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def stop(self, images: int) -> None:
        self.images += images
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._start, end))
        else:
            self._seconds += time.perf_counter() - self._start

    @property
    def seconds(self) -> float:
        for start, end in self._pending:
            end.synchronize()
            self._seconds += start.elapsed_time(end) / 1000.0
        self._pending.clear()
        return self._seconds


class Resident:
    """A split held as one uint8 NHWC tensor on the device; batches are indexed there."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 drop_last: bool) -> None:
        self.pixels, self.labels, self.batch_size, self.drop_last = pixels, labels, batch_size, drop_last

    def __len__(self) -> int:
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def batches(self, order: torch.Tensor | None, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        b, stop = self.batch_size, len(self) * self.batch_size
        if order is None:
            for start in range(0, stop, b):
                yield self.pixels[start:start + b], self.labels[start:start + b]
            return
        order = order.to(self.pixels.device, non_blocking=True)
        for start in range(0, stop, b):
            index = order[start:start + b]
            yield self.pixels[index], self.labels[index]


class EpochOrder(torch.utils.data.Sampler[int]):
    """The DataLoader's sampler: this epoch's order, set by DeviceBatches before each pass."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.order: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n) if self.order is None else self.order.tolist())


class Streamed:
    """A split fed by a DataLoader of uint8 NHWC batches, in the order DeviceBatches draws; ``seed``
    seeds the workers (the ``pil`` pipeline's per-image augmentation)."""

    def __init__(self, loader: torch.utils.data.DataLoader, sampler: EpochOrder) -> None:
        self.loader, self.sampler = loader, sampler

    def __len__(self) -> int:
        return len(self.loader)

    def batches(self, order: torch.Tensor | None, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.order = order
        if self.loader.generator is not None:
            self.loader.generator.manual_seed(seed)
        return iter(self.loader)


class DeviceBatches:
    """Iterable of (float32 NCHW normalised, int64 labels) on ``device``, from a Resident or Streamed
    source, augmented on the device by ``augment`` (a zoo.data.batched.BatchAugment) when given.
    ``dataset`` (the split's ImageSet) gives the number of images."""

    def __init__(self, source: Resident | Streamed, *, device: str, mean: list[float], std: list[float],
                 shuffle: bool = False, seed: int = 0, augment: Any = None, pipeline: str = "batched",
                 dataset: Any = None) -> None:
        self.source, self.device, self.shuffle = source, torch.device(device), shuffle
        self.augment, self.pipeline, self.dataset = augment, pipeline, dataset
        self.generator = torch.Generator().manual_seed(seed)
        shape = (1, len(mean), 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(shape).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).view(shape).to(self.device)
        self.clock = LoaderClock(str(device))

    @property
    def resident(self) -> bool:
        return isinstance(self.source, Resident)

    @property
    def num_workers(self) -> int:
        return self.source.loader.num_workers if isinstance(self.source, Streamed) else 0

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from zoo.data.batched import normalize

        # every draw of the epoch comes from self.generator, so reseeding it replays the epoch
        order = torch.randperm(len(self.dataset), generator=self.generator) if self.shuffle else None
        augment_seed, worker_seed = torch.randint(2**62, (2,), generator=self.generator).tolist()
        augment_generator = torch.Generator().manual_seed(augment_seed)
        self.clock.reset()
        batches = self.source.batches(order, worker_seed)
        while True:
            self.clock.start()
            batch = next(batches, None)
            if batch is None:
                return
            pixels, labels = batch
            if len(labels) == 0:
                continue  # an evaluation batch of nothing but unreadable files (zoo.data.loaders)
            images = pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            if self.augment is not None:
                images = self.augment(images, augment_generator)
            images = normalize(images, self.mean, self.std)
            labels = labels.to(self.device, non_blocking=True)
            self.clock.stop(len(labels))
            yield images, labels
