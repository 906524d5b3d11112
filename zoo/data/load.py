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
