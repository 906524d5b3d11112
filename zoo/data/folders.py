"""ImageFolder discovery: class folders, the DIR/train|val|test layout, and the corrupt-file scan.

A folder of up to ``CHECK_UP_TO`` image files is checked up front: every candidate is decoded once
(JPEGs at reduced scale, which still reads the whole stream) so corrupt, truncated and non-image
files are skipped and listed before training starts. A larger folder is not read up front (100k
files took 16 s to check here, 0.7 s not to): only a sample of headers gives the native size and
colour mode, and an unreadable file is skipped, with a warning, when it is first decoded
(zoo.data.images).
``check_images=True`` checks every file whatever the size, ``False`` none.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from zoo.data.splits import SPLIT_RECORD_VERSION, DataSplits, SampleSet, stratified_split
from zoo.errors import ZooUsageError
from zoo.runtime.preprocess import silence_libtiff

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
VAL_FOLDERS = ("val", "valid", "validation")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
CHECK_UP_TO = 10_000  # check_images=None checks folders of up to this many image files up front
HEADER_SAMPLE = 500  # otherwise: headers read for the native size and colour mode


@dataclass
class FolderScan:
    """The readable images of one folder of class folders."""

    classes: list[str]
    paths: list[Path]
    labels: list[int]
    shorter_sides: list[int]
    gray: bool
    skipped: list[tuple[str, str]]
    checked: bool = True  # every file was decoded; else unreadable ones are found while training


def _hidden(name: str) -> bool:
    return name.startswith(".")


def class_folders(directory: Path) -> list[str]:
    """Sorted, non-hidden sub-folder names."""
    return sorted(d.name for d in directory.iterdir() if d.is_dir() and not _hidden(d.name))


Probe = tuple[int, str] | str  # (shorter side, mode), or why the file is unreadable


def _probe(path: Path, decode: bool = True) -> Probe:
    """(shorter side, mode) of a fully decodable image (``decode``) or of a readable header, else the
    reason it is not one."""
    silence_libtiff()  # the reason goes to skipped.txt; libtiff must not print its own line too
    try:
        with Image.open(path) as img:
            size, mode = img.size, img.mode
            if decode:
                if img.format == "JPEG":
                    img.draft(mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
                img.load()
    except Exception as exc:  # Pillow raises many types for bad files; all mean "skip it"
        return " ".join(f"unreadable image ({type(exc).__name__}: {exc})".split())
    if min(size) < 1:
        return "empty image (0 pixels)"
    return min(size), mode


def _probes(candidates: list[Path], check_images: bool | None) -> tuple[dict[int, Probe], bool]:
    """{candidate index: probe} for every candidate (decoded: checked) or for an evenly spaced sample
    of headers; and whether every candidate was checked."""
    check = len(candidates) <= CHECK_UP_TO if check_images is None else check_images
    if check:
        picked, probe = list(range(len(candidates))), _probe
    else:
        step = max(1, len(candidates) // HEADER_SAMPLE)
        picked, probe = list(range(0, len(candidates), step)), partial(_probe, decode=False)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(probe, [candidates[i] for i in picked], chunksize=32)
        return dict(zip(picked, results, strict=True)), check


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan_folder(
    directory: Path, root: Path, classes: list[str] | None = None, check_images: bool | None = None
) -> FolderScan:
    """Scan ``directory``/<class>/**; ``classes`` (from train) must match the folders found.
    ``check_images``: decode every file now (True), none (False), or only up to CHECK_UP_TO (None)."""
    if not directory.is_dir():
        raise ZooUsageError(f"{directory}: no such directory")
    found = class_folders(directory)
    if not found:
        raise ZooUsageError(f"{directory}: no class folders (expected {directory}/<class>/<image files>)")
    if classes is not None and found != classes:
        missing = sorted(set(classes) - set(found))
        extra = sorted(set(found) - set(classes))
        detail = "; ".join(p for p in (f"missing {', '.join(missing)}" if missing else "",
                                       f"extra {', '.join(extra)}" if extra else "") if p)
        raise ZooUsageError(f"{directory}: class folders differ from the training classes ({detail})")
    if len(found) == 1:
        raise ZooUsageError(f"{directory}: only one class folder ('{found[0]}'); a classifier needs two")
    candidates: list[tuple[Path, int]] = []
    skipped: list[tuple[str, str]] = []
    for label, name in enumerate(found):
        for folder, dirs, files in os.walk(directory / name):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            for file in sorted(files):
                if _hidden(file):
                    continue
                path = Path(folder) / file
                if path.suffix.lower() in IMG_EXTENSIONS:
                    candidates.append((path, label))
                else:
                    skipped.append((_rel(path, root), f"not an image file (extension '{path.suffix}')"))
    probes, checked = _probes([p for p, _ in candidates], check_images)
    paths, labels, sides, modes = [], [], [], set()
    for i, (path, label) in enumerate(candidates):
        probe = probes.get(i)
        if isinstance(probe, str):
            skipped.append((_rel(path, root), probe))
            continue
        paths.append(path)
        labels.append(label)
        if probe is not None:
            sides.append(probe[0])
            modes.add(probe[1])
    counts = [0] * len(found)
    for label in labels:
        counts[label] += 1
    for name, count in zip(found, counts, strict=True):
        if count == 0:
            bad = sum(1 for file, _ in skipped if file.startswith(_rel(directory / name, root) + "/"))
            note = f" ({bad} unreadable file(s) skipped)" if bad else ""
            raise ZooUsageError(f"{directory / name}: class folder has no images{note}")
    if not sides:
        raise ZooUsageError(f"{directory}: none of the {len(probes)} images sampled is readable")
    return FolderScan(found, paths, labels, sides, modes <= GRAY_MODES, skipped, checked)


def _layout(root: Path) -> dict[str, Path]:
    """{"train": .., "val": .., "test": ..} folders present, or {} for a flat class-folder tree."""
    names = {d.name: d for d in root.iterdir() if d.is_dir()}
    split_dirs = {"train": names.get("train"), "test": names.get("test")}
    split_dirs["val"] = next((names[n] for n in VAL_FOLDERS if n in names), None)
    present = {k: v for k, v in split_dirs.items() if v is not None}
    if present and "train" not in present:
        return {}  # 'val'/'test' without 'train' are ordinary class folders
    return present


def _check_root(root: Path) -> None:
    if not root.exists():
        raise ZooUsageError(f"{root}: no such directory")
    if not root.is_dir():
        raise ZooUsageError(f"{root}: not a directory")


def load_folder_splits(
    root: Path, *, val_split: float, seed: int, split_record: dict[str, Any] | None = None,
    check_images: bool | None = None,
) -> DataSplits:
    """DIR/train (+ DIR/val|valid, DIR/test), or class folders split stratified and seeded;
    ``check_images`` as in ``scan_folder``."""
    _check_root(root)
    if split_record is not None:
        return _replay(root, split_record)
    layout = _layout(root)
    train_scan = scan_folder(layout.get("train", root), root, check_images=check_images)
    classes = train_scan.classes
    skipped = list(train_scan.skipped)
    train = SampleSet(train_scan.labels, paths=train_scan.paths)
    scans = [train_scan]
    if "val" in layout:
        val_scan = scan_folder(layout["val"], root, classes, check_images)
        skipped += val_scan.skipped
        scans.append(val_scan)
        val = SampleSet(val_scan.labels, paths=val_scan.paths)
    else:
        kept, held = stratified_split(train.labels, val_split, seed)
        train, val = train.subset(kept), train.subset(held)
    test = None
    if "test" in layout:
        test_scan = scan_folder(layout["test"], root, classes, check_images)
        skipped += test_scan.skipped
        scans.append(test_scan)
        test = SampleSet(test_scan.labels, paths=test_scan.paths)
    channels = 1 if train_scan.gray else 3
    native = int(statistics.median(train_scan.shorter_sides))
    record = {
        "version": SPLIT_RECORD_VERSION,
        "kind": "folder",
        "root": str(root.resolve()),
        "layout": "split" if layout else "flat",
        "val_split": val_split,
        "seed": seed,
        "classes": classes,
        "channels": channels,
        "native_size": native,
        "train": [_rel(p, root) for p in train.paths or []],
        "val": [_rel(p, root) for p in val.paths or []],
        "test": None if test is None else [_rel(p, root) for p in test.paths or []],
        "skipped": [list(s) for s in skipped],
    }
    checked = all(scan.checked for scan in scans)
    return DataSplits(str(root.resolve()), classes, channels, native, train, val, test, record, skipped,
                      checked=checked)


def _replay(root: Path, record: dict[str, Any]) -> DataSplits:
    """The split a record describes, resolved under ``root`` (which may have moved)."""
    if record.get("kind") != "folder":
        source = record.get("source")
        raise ZooUsageError(f"{root}: the split record is for data set '{source}', not a directory")
    classes = list(record["classes"])
    index = {name: i for i, name in enumerate(classes)}
    depth = 1 if record["layout"] == "split" else 0

    def sample_set(files: list[str] | None) -> SampleSet | None:
        if files is None:
            return None
        paths = [root / f for f in files]
        missing = [f for f, p in zip(files, paths, strict=True) if not p.is_file()]
        if missing:
            raise ZooUsageError(f"{root}: {len(missing)} file(s) of the recorded split are missing, "
                                f"e.g. {missing[0]}")
        labels = []
        for f in files:
            name = f.split("/")[depth]
            if name not in index:
                raise ZooUsageError(f"{root}: recorded file {f} is not in a known class folder")
            labels.append(index[name])
        return SampleSet(labels, paths=paths)

    train, val = sample_set(record["train"]), sample_set(record["val"])
    assert train is not None and val is not None
    skipped = [(str(f), str(r)) for f, r in record.get("skipped", [])]
    return DataSplits(str(root.resolve()), classes, int(record["channels"]), int(record["native_size"]),
                      train, val, sample_set(record.get("test")), dict(record), skipped)


def load_imagefolder_set(
    directory: str | Path, classes: list[str] | None = None
) -> tuple[SampleSet, list[tuple[str, str]]]:
    """One folder of class folders as a single evaluation set (e.g. ``zoo eval --data DIR/test``);
    ``classes`` (the run's) must match its class folders."""
    directory = Path(directory).expanduser()
    _check_root(directory)
    scan = scan_folder(directory, directory, classes)  # None: large folders are not read up front
    return SampleSet(scan.labels, paths=scan.paths), scan.skipped
