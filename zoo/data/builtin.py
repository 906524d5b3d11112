"""The built-in real data sets (nothing is downloaded) and the contract for plugin data sets.

A ``DatasetSpec.loader`` is called with no arguments and returns a mapping:

- ``"classes"``: list of class names (folder-safe: they become folder names on export);
- ``"train"``: ``(images, labels)``, images uint8 (N,H,W) grayscale or (N,H,W,3) RGB, labels ints;
- ``"test"`` (optional) and ``"val"`` (optional, else split from train with ``--val-split``);
- ``"hflip"`` (optional, default True): False where a mirrored image changes class.

It raises ``ZooUsageError`` with a hint when its files are missing; ``DatasetSpec.available``
must stay cheap (file existence), since ``zoo data list`` calls it for every data set.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.splits import SPLIT_RECORD_VERSION, DataSplits, SampleSet, stratified_split
from zoo.errors import ZooError, ZooUsageError
from zoo.registry import DatasetSpec, resolve

FASHION_ENV = "ZOO_FASHION_MNIST_DIR"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["tshirt_top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
FASHION_FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # fixed: the digits test set is the same for every run and every --seed


def digits_available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def load_digits() -> dict[str, Any]:
    """scikit-learn's 1,797 8x8 digit scans (0..16) as 0..255 uint8, with a fixed stratified
    20% test split."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels.tolist(), DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    return {
        "classes": [str(d) for d in range(10)],
        "train": (images[train], labels[train]),
        "test": (images[test], labels[test]),
        "hflip": False,
    }


def _idx_file(directory: Path, stem: str, kind: str) -> Path | None:
    for name in (f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"):
        for suffix in ("", ".gz"):
            if (directory / (name + suffix)).is_file():
                return directory / (name + suffix)
    return None


def _fashion_files(directory: Path) -> dict[str, tuple[Path, Path]] | None:
    files = {}
    for split, (images, labels) in FASHION_FILES.items():
        image_file, label_file = _idx_file(directory, images, "idx3"), _idx_file(directory, labels, "idx1")
        if image_file is None or label_file is None:
            return None
        files[split] = (image_file, label_file)
    return files


def fashion_mnist_dir() -> Path:
    """$ZOO_FASHION_MNIST_DIR when set, else where Debian's dataset-fashion-mnist installs."""
    env = os.environ.get(FASHION_ENV)
    return Path(env).expanduser() if env else FASHION_DEBIAN_DIR


def fashion_mnist_available() -> bool:
    return _fashion_files(fashion_mnist_dir()) is not None


@functools.lru_cache(maxsize=8)
def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzipped) as a read-only uint8 array; cached per process."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ZooError(f"{path}: unreadable idx file ({exc})") from None
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise ZooError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ZooError(f"{path}: truncated idx file ({data.size} bytes for shape {shape})")
    data = data.reshape(shape)
    data.flags.writeable = False
    return data


def load_fashion_mnist() -> dict[str, Any]:
    """Zalando's Fashion-MNIST (60,000 train / 10,000 test, 28x28 grayscale) from idx files."""
    directory = fashion_mnist_dir()
    files = _fashion_files(directory)
    if files is None:
        raise ZooUsageError(
            f"data set 'fashion-mnist' not found in {directory}: install Debian's dataset-fashion-mnist "
            f"(apt-get install dataset-fashion-mnist) or set {FASHION_ENV} to a folder of its idx files"
        )
    out: dict[str, Any] = {"classes": list(FASHION_CLASSES), "hflip": True}
    for split, (image_file, label_file) in files.items():
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ZooError(f"{image_file}: shape {images.shape} does not fit labels {labels.shape}")
        out[split] = (images, labels.astype(np.int64))
    return out


def _arrays(name: str, split: str, value: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one (images, labels) pair a loader returned."""
    try:
        images, labels = value
        images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"data set '{name}': split '{split}' is not (images, labels): {exc}") from None
    ok_shape = images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)
    if images.dtype != np.uint8 or not ok_shape or len(images) != len(labels) or len(images) == 0:
        raise ZooError(f"data set '{name}': split '{split}' must be uint8 (N,H,W) or (N,H,W,3) images "
                       f"with N labels, got {images.dtype} {images.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ZooError(f"data set '{name}': split '{split}' has labels outside 0..{num_classes - 1}")
    return images, labels


def load_builtin(spec: DatasetSpec) -> Mapping[str, Any]:
    """Call a data set's loader, turning a plugin's failure into a one-line error."""
    try:
        data = resolve(spec.loader)()
    except ZooError:
        raise
    except Exception as exc:
        owner = f" (plugin '{spec.plugin}')" if spec.plugin else ""
        raise ZooError(f"data set '{spec.name}'{owner} failed to load: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, Mapping) or "classes" not in data or "train" not in data:
        raise ZooError(f"data set '{spec.name}': its loader must return a mapping with 'classes' and 'train'")
    return data


def load_builtin_splits(
    spec: DatasetSpec, *, val_split: float, seed: int, split_record: dict[str, Any] | None = None
) -> DataSplits:
    """A registered data set split into train/val(/test); val is drawn from train unless given."""
    data = load_builtin(spec)
    classes = [str(c) for c in data["classes"]]
    if len(classes) < 2:
        raise ZooError(f"data set '{spec.name}' has {len(classes)} class(es); a classifier needs two or more")
    arrays = {s: _arrays(spec.name, s, data[s], len(classes)) for s in ("train", "val", "test") if s in data}
    sets = {s: SampleSet(labels.tolist(), images=images) for s, (images, labels) in arrays.items()}
    pool = sets["train"]
    if "val" in sets:
        train, val, held = pool, sets["val"], None
    elif split_record is not None:
        if split_record.get("kind") != "builtin" or split_record.get("source") != spec.name:
            source = split_record.get("source") or split_record.get("root")
            raise ZooUsageError(f"the split record is for '{source}', not data set '{spec.name}'")
        held = [int(i) for i in split_record["val"]]
        if any(not 0 <= i < len(pool) for i in held):
            raise ZooUsageError(f"the split record does not fit data set '{spec.name}' (index out of range)")
        held_set = set(held)
        kept = [i for i in range(len(pool)) if i not in held_set]
        train, val = pool.subset(kept), pool.subset(held)
    else:
        kept, held = stratified_split(pool.labels, val_split, seed)
        train, val = pool.subset(kept), pool.subset(held)
    images = arrays["train"][0]
    channels = 1 if images.ndim == 3 else 3
    record = {
        "version": SPLIT_RECORD_VERSION,
        "kind": "builtin",
        "source": spec.name,
        "val_split": val_split if split_record is None else split_record.get("val_split"),
        "seed": seed if split_record is None else split_record.get("seed"),
        "val": held,
        "counts": {"train": len(train), "val": len(val), "test": len(sets["test"]) if "test" in sets else 0},
    }
    return DataSplits(spec.name, classes, channels, int(min(images.shape[1:3])), train, val,
                      sets.get("test"), record, [], bool(data.get("hflip", True)))
