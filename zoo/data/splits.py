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


DATASET_PREFIX = "dataset:"  # --data dataset:NAME: the registered data set, whatever folders exist


def _looks_like_path(data: str) -> bool:
    return os.sep in data or "/" in data or data.startswith((".", "~"))


def _is_folder(data: str | Path, split_record: dict[str, Any] | None, datasets: Any) -> bool:
    """The rule for ``--data``: a Path, or text that looks like a path (a separator, a leading
    ``.`` or ``~``), is a folder; ``dataset:NAME`` is a data set; a bare word is a data set if one
    has that name, else a folder. A bare word that is both a data set and an existing path is
    ambiguous: an error that shows both spellings, unless a recorded split says which it was."""
    if isinstance(data, Path):
        return True
    text = str(data)
    if text.startswith(DATASET_PREFIX):
        return False
    if _looks_like_path(text):
        return True
    exists = Path(text).expanduser().exists()
    if text in datasets and exists and split_record is not None:
        return split_record.get("kind") == "folder"
    if text in datasets and exists:
        raise ZooUsageError(f"--data {text} is ambiguous: it names the data set '{text}' and the directory "
                            f"./{text}; write --data ./{text} for the directory or --data "
                            f"{DATASET_PREFIX}{text} for the data set")
    return exists and text not in datasets


def load_splits(
    data: str | Path, *, val_split: float = 0.2, seed: int = 0, split_record: dict[str, Any] | None = None
) -> DataSplits:
    """Train/val(/test) from an ImageFolder directory or a registered data set name.

    ``split_record`` (a previous result's ``split_record``) replays that split instead of drawing
    a new one. Which of the two ``data`` means follows one documented rule (``_is_folder``).
    """
    check_val_split(val_split)
    if split_record is not None and split_record.get("version") != SPLIT_RECORD_VERSION:
        raise ZooUsageError(f"split record version {split_record.get('version')!r} is not supported")
    from zoo.plugins import get_host

    datasets = get_host().datasets
    if _is_folder(data, split_record, datasets):
        from zoo.data.folders import load_folder_splits

        path = Path(data).expanduser()
        return load_folder_splits(path, val_split=val_split, seed=seed, split_record=split_record)
    name = str(data).removeprefix(DATASET_PREFIX)
    if name not in datasets:
        message = unknown_message("data set", name, datasets.names())
        raise ZooUsageError(f"{message} (and no such directory)")
    from zoo.data.builtin import load_builtin_splits

    spec = datasets.get(name)
    return load_builtin_splits(spec, val_split=val_split, seed=seed, split_record=split_record)
