"""Write a registered data set as an ImageFolder tree: DIR/<split>/<class>/<index>.png.

The tree is what ``--data DIR`` reads, so any built-in or plugin data set can be inspected,
edited, or used by other tools.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.builtin import _arrays, load_builtin
from zoo.errors import ZooUsageError

EXPORT_SPLITS = ("all", "train", "val", "test")


def export_dataset(name: str, directory: str | Path, split: str = "all") -> dict[str, int]:
    """Write ``split`` ("all" = every split the data set has) as PNGs; returns images per split.
    Refuses a non-empty ``directory`` so nothing there is overwritten. The tree is written in a
    hidden sibling folder and renamed into place when complete: a failure (a full disk) leaves
    nothing behind, so the same command can simply run again."""
    from zoo.plugins import get_host
    from zoo.run import temp_sibling, write_error

    if split not in EXPORT_SPLITS:
        raise ZooUsageError(f"--split must be one of {', '.join(EXPORT_SPLITS)}, got '{split}'")
    spec = get_host().datasets.get(name)
    directory = Path(directory).expanduser()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ZooUsageError(f"{directory}: exists and is not an empty directory; choose a new one")
    data = load_builtin(spec)
    classes = [str(c) for c in data["classes"]]
    wanted = [s for s in ("train", "val", "test") if s in data and split in ("all", s)]
    if not wanted:
        raise ZooUsageError(f"data set '{name}' has no '{split}' split")
    staging = temp_sibling(directory)
    counts = {}
    try:
        for part in wanted:
            images, labels = _arrays(name, part, data[part], len(classes))
            for cls in classes:
                (staging / part / cls).mkdir(parents=True, exist_ok=True)
            paths = [staging / part / classes[label] / f"{i:05d}.png" for i, label in enumerate(labels)]
            _write_pngs(images, paths)
            counts[part] = len(images)
        os.replace(staging, directory)  # an empty target directory is replaced too
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(directory, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _write_pngs(images: np.ndarray, paths: list[Path]) -> None:
    def save(i: int) -> None:
        Image.fromarray(images[i]).save(paths[i])

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(save, range(len(paths)), chunksize=256))
