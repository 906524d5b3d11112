"""``zoo bench --mode loader``: how fast the training input pipeline delivers batches, per number of
DataLoader workers, beside the model's own training step, so a user sees which of the two bounds
training before spending hours on it.

The loader is timed as ``zoo train`` runs it (zoo.data.loaders.make_loaders): the files decoded every
epoch (``--cache off`` by default, as for a folder too large to hold), augmented, normalised and on
the device, after one untimed batch that pays for starting the workers.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from zoo.errors import ZooUsageError


@dataclass
class LoaderResult:
    """One worker count's row."""

    workers: int
    pipeline: str
    batch: int
    image_size: int
    images: int  # timed images
    seconds: float
    images_per_s: float
    per_worker: float  # images_per_s / max(1, workers): what one more core buys
    step_images_per_s: float | None = None  # the model's training step at the same batch, if measured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_workers() -> list[int]:
    cores = os.cpu_count() or 1
    return sorted({0, 1, min(2, cores), cores})


def _preprocessing(splits: Any, arch: str | None, image_size: int | None) -> dict[str, Any]:
    """What training would use at this size; mean/std 0.5 (their values do not change the speed)."""
    from zoo.data import default_image_size, eval_preprocessing

    if image_size is None:
        from zoo.catalog import get_spec

        default = get_spec(arch).image_size if arch else 224
        image_size = default_image_size(splits.native_size, default)
    half = [0.5] * splits.channels
    return eval_preprocessing(image_size, splits.channels, half, half, splits.native_size)


def time_loader(loader: Any, batches: int) -> tuple[int, float]:
    """(images, seconds) over ``batches`` batches after the first; passes are repeated if one is short."""
    it = iter(loader)
    next(it)  # the workers start and fill their queues
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(it, None)
        if batch is None:
            it = iter(loader)
            batch = next(it)
        images += len(batch[1])
    return images, time.perf_counter() - start


def bench_loader(
    data: str, *, arch: str | None = None, image_size: int | None = None, batch_size: int = 64,
    workers: list[int] | None = None, pipeline: str = "auto", augment: str = "standard", cache: str = "off",
    batches: int = 20, device: str = "cpu", threads: int | None = None,
) -> list[LoaderResult]:
    """Images/s of the training loader for each worker count (and the training step of ``arch``)."""
    import torch

    from zoo.data import load_splits
    from zoo.data.batches import resolve_pipeline
    from zoo.data.loaders import make_loaders

    if batches < 1:
        raise ZooUsageError(f"--repeats (batches timed) must be at least 1, got {batches}")
    workers = default_workers() if workers is None else workers
    if any(w < 0 for w in workers):
        raise ZooUsageError(f"--workers must be 0 or more, got {','.join(map(str, workers))}")
    if threads is not None:
        torch.set_num_threads(threads)
    splits = load_splits(data)
    preprocessing = _preprocessing(splits, arch, image_size)
    size = int(preprocessing["crop"])
    chosen = resolve_pipeline(pipeline, device, size)
    rows = []
    for count in workers:
        train, _, _ = make_loaders(splits, preprocessing, augment=augment, batch_size=batch_size,
                                   workers=count, cache=cache, device=device, pipeline=chosen)
        images, seconds = time_loader(train, batches)
        rate = images / seconds
        per_worker = rate / max(1, count)
        rows.append(LoaderResult(count, chosen, batch_size, size, images, seconds, rate, per_worker))
        del train
    if arch:
        rate = train_step_rate(arch, size, batch_size, device, threads)
        for row in rows:
            row.step_images_per_s = rate
    return rows


def train_step_rate(arch: str, image_size: int, batch_size: int, device: str, threads: int | None) -> float:
    """Images/s of ``arch``'s forward + backward + SGD step on a batch already on the device."""
    from zoo.bench import BenchOptions, bench_report

    options = BenchOptions(device=device, mode="train", input="device", threads=threads)
    report = bench_report([arch], ["torch"], [batch_size], options, image_size=image_size, repeats=5,
                          warmup=2)
    return report.results[0].images_per_s


def verdict(rows: list[LoaderResult]) -> str:
    """One line: does the loader keep up with the model, and from how many workers."""
    step = rows[0].step_images_per_s if rows else None
    if step is None:
        return "no architecture given: the model's training step was not measured"
    enough = [r.workers for r in rows if r.images_per_s >= step]
    if not enough:
        best = max(rows, key=lambda r: r.images_per_s)
        return (f"the loader bounds training: at best {best.images_per_s:,.0f} img/s ({best.workers} "
                f"workers) against the model's {step:,.0f} img/s")
    return f"the model bounds training ({step:,.0f} img/s): the loader keeps up from {min(enough)} worker(s)"
