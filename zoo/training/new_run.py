"""A new run directory: where it may go, what its config.json says, and the checks made before any
of it is written (``zoo train``, ``zoo lr-find`` and ``zoo tune`` share them)."""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.data.load import DATASET_PREFIX
from zoo.errors import ZooUsageError
from zoo.model_check import check_trainable
from zoo.registry import ArchSpec
from zoo.run import (
    CLASSES_FILE,
    CONFIG_FILE,
    LOCK_FILE,
    SKIPPED_FILE,
    SPLIT_FILE,
    RunLock,
    atomic_write_json,
    atomic_write_text,
    stopped_before_first_checkpoint,
)
from zoo.training.config import SMALL_INPUT_MAX, TrainConfig


def check_out(out: Path) -> Path:
    """--out must be new, empty, or a run stopped before its first checkpoint (checked again under
    the run's lock before the first write)."""
    if out.exists() and not out.is_dir():
        raise ZooUsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and (out / LOCK_FILE).exists():
        RunLock(out).release()  # refused now, with the holder's pid, if another process writes there
    stopped_early = out.is_dir() and stopped_before_first_checkpoint(out)
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()) and not stopped_early:
        raise ZooUsageError(f"--out {out}: directory is not empty; choose another or --resume it")
    return out


def small_input_kwargs(spec: ArchSpec, image_size: int) -> dict[str, Any]:
    """``small_input`` for ImageNet-style nets on small images (when the builder knows it)."""
    if image_size > SMALL_INPUT_MAX or "imagenet" not in spec.tags:
        return {}
    params = inspect.signature(spec.builder_function()).parameters
    accepts = "small_input" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"small_input": True} if accepts else {}


def input_shape(spec: ArchSpec, splits: Any, cfg: TrainConfig) -> tuple[int, int]:
    """(image size, channels) of a new run: the options, else from the data and architecture."""
    from zoo.data import default_image_size

    return cfg.image_size or default_image_size(splits.native_size, spec.image_size), (
        cfg.in_channels or splits.channels)


def check_new_run(
    spec: ArchSpec, splits: Any, cfg: TrainConfig, device: str, model_kwargs: dict[str, Any] | None = None
) -> None:
    """The builder contract, the image size and the memory it needs (``check_trainable``), before
    the data is decoded at that size or anything is written."""
    size, channels = input_shape(spec, splits, cfg)
    kwargs = {**small_input_kwargs(spec, size), **(model_kwargs or {})}
    check_trainable(spec, size, channels, len(splits.classes), kwargs,
                    batch_size=int(cfg.batch_size), device=device)  # type: ignore[arg-type]


def source_id(data: str | Path) -> str:
    """How config.json names the data: an absolute directory path, or the data set name."""
    path = Path(data).expanduser()
    return str(path.resolve()) if path.is_dir() else str(data).removeprefix(DATASET_PREFIX)


def new_run_config(
    spec: ArchSpec,
    data: str | Path,
    splits: Any,
    cfg: TrainConfig,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.json of a new run: what rebuilds the model and replays its eval preprocessing."""
    from zoo import __version__
    from zoo.data import eval_preprocessing, norm_stats

    image_size, in_channels = input_shape(spec, splits, cfg)
    mean, std = norm_stats(cfg.norm, splits.train, in_channels, image_size)
    return {
        "arch": spec.name,
        "num_classes": len(splits.classes),
        "in_channels": in_channels,
        "model_kwargs": {**small_input_kwargs(spec, image_size), **(model_kwargs or {})},
        "classes": list(splits.classes),
        "image_size": image_size,
        "preprocessing": eval_preprocessing(image_size, in_channels, mean, std, splits.native_size),
        "data": {
            "source": source_id(data),
            "channels": splits.channels,
            "native_size": splits.native_size,
            "train": len(splits.train),
            "val": len(splits.val),
            "test": None if splits.test is None else len(splits.test),
            "skipped": len(splits.skipped),
        },
        "split_file": SPLIT_FILE,
        "train": cfg.to_dict(),
        "zoo_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_run_files(run_dir: Path, config: dict[str, Any], splits: Any, new: bool) -> None:
    """config.json always; for a new run also classes.json, the split record and skipped.txt."""
    atomic_write_json(run_dir / CONFIG_FILE, config)
    if not new:
        return
    atomic_write_json(run_dir / CLASSES_FILE, config["classes"])
    atomic_write_json(run_dir / SPLIT_FILE, splits.split_record)
    atomic_write_text(run_dir / SKIPPED_FILE, "".join(f"{f}\t{why}\n" for f, why in splits.skipped))
