"""The edge predictor: an exported ONNX file run with onnxruntime, numpy and Pillow only.

The ONNX graph is the network plus softmax on normalised NCHW float32 input. Everything
else a user needs (class names, the eval preprocessing) travels in the file's
``metadata_props`` and is applied here with ``zoo.runtime.preprocess``, the very functions
training's eval pipeline uses. This module must never import torch: it is what ships to a
device, and a test imports it with torch blocked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zoo.errors import ZooUsageError, error_head
from zoo.runtime.preprocess import ImageError, open_image, preprocess

ImageLike = str | Path | Image.Image
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

# Keys zoo writes into an exported model's metadata (strings; lists and dicts as JSON).
METADATA_KEYS = ("classes", "preprocessing", "mean", "std", "input_size", "channels", "arch",
                 "zoo_version", "opset", "precision")


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, most probable first."""

    source: str
    top: list[tuple[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.source, "top": [{"class": c, "prob": round(p, 6)} for c, p in self.top]}


class RuntimePredictor:
    """Preprocessing, batching and class names shared by every exported format.

    Subclasses only say how to run one normalised NCHW float32 batch (``run``)."""

    classes: list[str]
    preprocessing: dict[str, Any]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, num_classes) for a normalised float32 NCHW batch."""
        raise NotImplementedError

    def load(self, image: ImageLike) -> np.ndarray:
        """One file or PIL image -> normalised float32 CHW, as in training's eval pipeline."""
        if not isinstance(image, Image.Image):
            image = open_image(image, int(self.preprocessing["channels"]))
        return preprocess(image, self.preprocessing)

    def predict(self, images: Iterable[ImageLike], batch_size: int = 8) -> np.ndarray:
        """Softmax probabilities (N, num_classes), running ``batch_size`` images at a time."""
        if batch_size < 1:
            raise ZooUsageError(f"batch size must be a positive integer, got {batch_size}")
        out = [self.run(np.stack(chunk)) for chunk in _chunks((self.load(i) for i in images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable (class, probability) pairs of each row."""
        k = min(k, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        rows = zip(probs, order, strict=True)
        return [[(self.classes[j], float(row[j])) for j in idx] for row, idx in rows]

    def predict_files(
        self, paths: Sequence[str | Path], top_k: int = 5, batch_size: int = 8
    ) -> Iterator[Prediction | ImageError]:
        """One result per file, in order: a Prediction, or the ImageError that file raised.

        A bad file never stops the others (the CLI reports it and exits non-zero at the end)."""
        pending: list[tuple[int, str, np.ndarray]] = []
        results: dict[int, Prediction | ImageError] = {}
        next_out = 0
        for i, path in enumerate(paths):
            try:
                pending.append((i, str(path), self.load(path)))
            except ImageError as exc:
                results[i] = exc
            if len(pending) == batch_size or i == len(paths) - 1:
                if pending:
                    probs = self.run(np.stack([x for _, _, x in pending]))
                    for (j, src, _), top in zip(pending, self.top_k(probs, top_k), strict=True):
                        results[j] = Prediction(src, top)
                    pending = []
                while next_out in results:
                    yield results.pop(next_out)
                    next_out += 1


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (each must then be an image) and image files found under directories,
    skipping hidden files and folders there as training does (``.DS_Store``, ``.cache/``)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                          and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            out.append(path)
    return out


def _chunks(items: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_metadata(props: Mapping[str, str], path: str | Path) -> tuple[list[str], dict[str, Any]]:
    """(class names, preprocessing spec) from an exported model's metadata."""
    missing = [k for k in ("classes", "preprocessing") if k not in props]
    if missing:
        raise ZooUsageError(f"{path}: not a zoo predictor (no '{missing[0]}' in its metadata; "
                            "export it with zoo)")
    try:
        classes = [str(c) for c in json.loads(props["classes"])]
        spec = dict(json.loads(props["preprocessing"]))
    except (ValueError, TypeError) as exc:
        raise ZooUsageError(f"{path}: corrupt zoo metadata ({exc})") from None
    return classes, spec


class OnnxPredictor(RuntimePredictor):
    """``OnnxPredictor("model.onnx").predict(["cat.jpg"])`` -> probabilities (N, num_classes)."""

    def __init__(self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ZooUsageError(f"{self.path}: no such model file")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if threads < 1:
                raise ZooUsageError(f"--threads must be a positive integer, got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                os.fspath(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ZooUsageError(f"{self.path}: not a loadable ONNX model ({error_head(exc, 200)})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.classes, self.preprocessing = read_metadata(self.metadata, self.path)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]
