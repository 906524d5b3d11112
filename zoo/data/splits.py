"""Train/val/test splits: what training consumes, and how a split is made and replayed.

The contract the loaders (zoo.data.folders, zoo.data.builtin) fill in; zoo.data.load picks the
loader. Every split is stratified and seeded, and described by a JSON-able ``split_record`` that
training saves as split.json: passing it back reproduces the very same split (resume, eval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooUsageError

SPLIT_RECORD_VERSION = 1


@dataclass
class SampleSet:
    """One split, images not yet transformed: files on disk or in-memory uint8 arrays
    ((N,H,W) grayscale or (N,H,W,3) RGB)."""

    labels: list[int]
    paths: list[Path] | None = None
    images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int]) -> SampleSet:
        idx = [int(i) for i in indices]
        return SampleSet(
            labels=[self.labels[i] for i in idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            images=None if self.images is None else self.images[np.asarray(idx, dtype=np.int64)],
        )


@dataclass
class DataSplits:
    """A data set split for training; ``hflip`` is False where mirroring changes the class
    (digits), so the augmentation presets leave horizontal flips out."""

    source: str
    classes: list[str]
    channels: int
    native_size: int
    train: SampleSet
    val: SampleSet
    test: SampleSet | None
    split_record: dict[str, Any]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hflip: bool = True
    checked: bool = True  # every image was decoded once; else unreadable ones are skipped when met


def check_val_split(val_split: float) -> None:
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or not 0 < val_split < 1:
        raise ZooUsageError(f"--val-split must be between 0 and 1 (exclusive), got {val_split!r}")


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) indices: ``fraction`` of every class held out, at least one kept."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    kept: list[int] = []
    held: list[int] = []
    for cls in np.unique(labels_arr):
        members = np.flatnonzero(labels_arr == cls)
        members = members[rng.permutation(len(members))]
        n_held = min(round(len(members) * fraction), len(members) - 1)
        held.extend(members[:n_held].tolist())
        kept.extend(members[n_held:].tolist())
    return sorted(kept), sorted(held)
