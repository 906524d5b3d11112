"""Train/val/test splits: what training consumes, and how a split is made and replayed.

``load_splits`` accepts an ImageFolder directory or a registered data set name. Every split
is stratified and seeded, and described by a JSON-able ``split_record`` that training saves
as split.json: passing it back reproduces the very same split (resume, eval).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooUsageError
from zoo.registry import unknown_message

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


def _looks_like_path(data: str) -> bool:
    return os.sep in data or "/" in data or data.startswith((".", "~"))


def load_splits(
    data: str | Path, *, val_split: float = 0.2, seed: int = 0, split_record: dict[str, Any] | None = None
) -> DataSplits:
    """Train/val(/test) from an ImageFolder directory or a built-in data set name.

    A directory wins over a data set of the same name. ``split_record`` (a previous result's
    ``split_record``) replays that split instead of drawing a new one.
    """
    check_val_split(val_split)
    if split_record is not None and split_record.get("version") != SPLIT_RECORD_VERSION:
        raise ZooUsageError(f"split record version {split_record.get('version')!r} is not supported")
    path = Path(data).expanduser()
    if isinstance(data, Path) or path.is_dir() or _looks_like_path(str(data)):
        from zoo.data.folders import load_folder_splits

        return load_folder_splits(path, val_split=val_split, seed=seed, split_record=split_record)

    from zoo.plugins import get_host

    datasets = get_host().datasets
    if str(data) not in datasets:
        message = unknown_message("data set", str(data), datasets.names())
        raise ZooUsageError(f"{message} (and no such directory)")
    from zoo.data.builtin import load_builtin_splits

    spec = datasets.get(str(data))
    return load_builtin_splits(spec, val_split=val_split, seed=seed, split_record=split_record)
