"""``load_splits``: an ImageFolder directory or a registered data set name, split for training.

It sits above zoo.data.splits (the contract) and the two loaders that fill it in
(zoo.data.folders, zoo.data.builtin), so imports run one way: load -> loaders -> splits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.data.splits import SPLIT_RECORD_VERSION, DataSplits, check_val_split
from zoo.errors import ZooUsageError
from zoo.registry import unknown_message

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
    data: str | Path, *, val_split: float = 0.2, seed: int = 0, split_record: dict[str, Any] | None = None,
    check_images: bool | None = None,
) -> DataSplits:
    """Train/val(/test) from an ImageFolder directory or a registered data set name.

    ``split_record`` (a previous result's ``split_record``) replays that split instead of drawing
    a new one. Which of the two ``data`` means follows one documented rule (``_is_folder``).
    ``check_images`` decides whether a folder's images are all decoded up front (zoo.data.folders).
    """
    check_val_split(val_split)
    if split_record is not None and split_record.get("version") != SPLIT_RECORD_VERSION:
        raise ZooUsageError(f"split record version {split_record.get('version')!r} is not supported")
    from zoo.plugins import get_host

    datasets = get_host().datasets
    if _is_folder(data, split_record, datasets):
        from zoo.data.folders import load_folder_splits

        path = Path(data).expanduser()
        return load_folder_splits(path, val_split=val_split, seed=seed, split_record=split_record,
                                  check_images=check_images)
    name = str(data).removeprefix(DATASET_PREFIX)
    if name not in datasets:
        message = unknown_message("data set", name, datasets.names())
        raise ZooUsageError(f"{message} (and no such directory)")
    from zoo.data.builtin import load_builtin_splits

    spec = datasets.get(name)
    return load_builtin_splits(spec, val_split=val_split, seed=seed, split_record=split_record)
