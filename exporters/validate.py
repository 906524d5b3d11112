"""Validation: run an artefact in its own runtime against the PyTorch model on real images.

Both sides get the same decoded images; PyTorch sees them through the run's preprocessing spec,
the artefact through the spec it carries, so a wrong metadata entry fails here too. The
artefact runs at batch 1 and at a batch different from the tracing batch (a dynamic batch
axis can silently freeze to the tracing batch).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from zoo.errors import ZooError
from zoo.runtime.onnx_predictor import expand_inputs
from zoo.runtime.preprocess import ImageError, open_image, preprocess

if TYPE_CHECKING:
    from torch import nn

    from zoo.export_api import Exporter
    from zoo.runtime.onnx_predictor import RuntimePredictor


@dataclass
class LabelledImages:
    """Decoded images of one split (labels index the run's classes; None when unknown)."""

    images: list[Image.Image]
    labels: list[int] | None
    source: str


def first_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] if text else type(exc).__name__


def _evenly(items: Sequence[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` items spread over the whole list (splits are sorted by class)."""
    if limit is None or len(items) <= limit:
        return list(items)
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]


@functools.lru_cache(maxsize=4)
def _splits(source: str, val_split: float, seed: int, record: str) -> Any:
    """zoo.data's split, cached: one export validates, calibrates and gates on the same data."""
    from zoo.data import load_splits

    return load_splits(source, val_split=val_split, seed=seed, split_record=json.loads(record))


def split_images(
    run_dir: Path, config: dict[str, Any], splits: Sequence[str], limit: int | None, need_labels: bool = False
) -> LabelledImages:
    """Real images of the run's first available split among ``splits``, replaying the split
    training recorded (``split_file``) on the data source config.json names."""
    from zoo.data.images import pil_image
    from zoo.run import SPLIT_FILE, read_json

    what = "labelled images for the int8 accuracy gate" if need_labels else "validation images"
    source = (config.get("data") or {}).get("source")
    if not source:
        raise ZooError(f"{run_dir / 'config.json'}: no data source recorded, so no {what} "
                       "(use --no-validate to skip validation)")
    record_path = run_dir / config.get("split_file", SPLIT_FILE)
    record = read_json(record_path, "split record") if record_path.is_file() else None
    train = config.get("train", {})
    try:
        found = _splits(source, float(train.get("val_split", 0.2)), int(train.get("seed", 0)),
                        json.dumps(record, sort_keys=True))
    except ZooError as exc:
        raise ZooError(f"cannot load the run's data for {what}: {exc}") from None
    channels = int(config["preprocessing"]["channels"])
    for split in splits:
        samples = getattr(found, split, None)
        if samples is not None and len(samples):
            picked = _evenly(range(len(samples)), limit)
            return LabelledImages([pil_image(samples, i, channels) for i in picked],
                                  [samples.labels[i] for i in picked], f"{source} ({split} split)")
    raise ZooError(f"{source}: the run's data has no {' or '.join(splits)} split for {what}")


def calibration_images(
    run_dir: Path, config: dict[str, Any], calib_data: str | Path | None, limit: int
) -> list[np.ndarray]:
    """Preprocessed images to calibrate int8 ranges on: ``calib_data`` or the run's training split."""
    spec = config["preprocessing"]
    if calib_data is not None:
        root = Path(calib_data)
        if not root.is_dir():
            raise ZooError(f"{root}: --calib-data is not a directory")
        arrays = []
        for path in _evenly(expand_inputs([root]), limit):
            try:
                arrays.append(preprocess(open_image(path, int(spec["channels"])), spec))
            except ImageError:
                continue
        if not arrays:
            raise ZooError(f"{root}: no readable images for calibration")
        return arrays
    found = split_images(run_dir, config, ("train", "val"), limit)
    return [preprocess(im, spec) for im in found.images]


def torch_probs(model: nn.Module, arrays: np.ndarray, batch: int = 32) -> np.ndarray:
    """The reference: the PyTorch model in eval mode, then softmax (fp32)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(arrays), batch):
            out.append(torch.softmax(model(torch.from_numpy(arrays[i : i + batch])), dim=1).numpy())
    return np.concatenate(out)


def validation_batch(tracing_batch: int) -> int:
    """A batch size different from the tracing batch, and from 1."""
    return 2 * tracing_batch + 1


def compare(
    predictor: RuntimePredictor, images: LabelledImages, reference: np.ndarray, tracing_batch: int, tol: float
) -> dict[str, Any]:
    """Max |p_artefact - p_torch| and top-1 agreement at batch 1 and another batch."""
    batches = [1, validation_batch(tracing_batch)]
    worst, agree = 0.0, 1.0
    runtime_top1 = None
    for b in batches:
        probs = predictor.predict(images.images, batch_size=b)
        if probs.shape != reference.shape:
            raise ZooError(f"artefact returned shape {probs.shape} at batch {b}, expected {reference.shape}")
        worst = max(worst, float(np.abs(probs - reference).max()))
        agree = min(agree, float((probs.argmax(1) == reference.argmax(1)).mean()))
        if images.labels is not None:
            runtime_top1 = float((probs.argmax(1) == np.asarray(images.labels)).mean() * 100)
    result = {
        "images": len(images.images),
        "source": images.source,
        "batches": batches,
        "max_abs_diff": worst,
        "top1_agreement": agree * 100,
        "tol": tol,
        "passed": bool(worst <= tol and agree == 1.0),
    }
    if images.labels is not None:
        result["torch_top1"] = float((reference.argmax(1) == np.asarray(images.labels)).mean() * 100)
        result["runtime_top1"] = runtime_top1
    return result


def validate(
    exporter: Exporter,
    path: Path,
    model: nn.Module,
    spec: dict[str, Any],
    images: LabelledImages,
    tracing_batch: int,
    tol: float,
) -> dict[str, Any]:
    """Load ``path`` with the exporter's runtime and compare it with ``model`` fed through ``spec``
    (the run's preprocessing; the artefact uses the copy it carries)."""
    predictor = exporter.load(path)
    if predictor is None:
        return {"passed": True, "skipped": f"not validated: the {exporter.name} exporter has no load()"}
    if not images.images:
        raise ZooError(f"{images.source}: no readable validation images")
    arrays = np.stack([preprocess(im, spec) for im in images.images])
    return compare(predictor, images, torch_probs(model, arrays), tracing_batch, tol)


def summary(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"skipped ({result['skipped']})"
    return (f"max |dp| {result['max_abs_diff']:.2e} (tol {result['tol']:.0e}), top-1 agreement "
            f"{result['top1_agreement']:.1f}% on {result['images']} images of {result['source']} at batch "
            f"{result['batches']}")
