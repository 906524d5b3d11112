#!/usr/bin/env python3
"""Classify images with a model exported by zoo, using onnxruntime, numpy and Pillow only.

    python predict.py photo.jpg more_photos/ [--model model.int8.onnx] [--top-k 3] [--json]

This one file is zoo's whole edge runtime (``zoo.runtime.predict``): zoo imports it for
training's eval pipeline, export validation and ``zoo predict``, and ``zoo export --bundle``
copies it verbatim as the bundle's predict.py. So a device preprocesses every image exactly as
training evaluated it, and the two cannot drift apart (a test compares the bytes). It imports
only the standard library, numpy, Pillow and onnxruntime (and zoo's error types when zoo is there).

The model file (ONNX, or onnxruntime's ORT format) carries what prediction needs in its
metadata: the class names, the preprocessing spec (``resize`` the shorter side, center ``crop``,
``channels``, ``mean``/``std`` on the 0..1 scale, ``interpolation``) and the input contract
(``input``: normalised float32 NCHW, or uint8 frames that the graph normalises itself). The
metadata is checked against the graph when the model loads, and ``graph_sha256`` against the
file's graph, so a damaged or hand-edited file is one error line, not a wrong answer.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import mmap
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

try:  # inside zoo these are zoo's own error types (its CLI prints them as one line); the bundle has no zoo
    from zoo.errors import ZooError as ModelError
    from zoo.errors import ZooUsageError as UsageError
except ImportError:

    class ModelError(Exception):  # type: ignore[no-redef]
        """A model file (or its metadata) that cannot be used; the message names the file."""

        exit_code = 1

    class UsageError(ModelError):  # type: ignore[no-redef]
        """A bad option or argument."""

        exit_code = 2


INTERPOLATION = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                 "nearest": Image.Resampling.NEAREST}
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
# The model files a bundle may hold, in the order predict.py picks its default from.
DEFAULT_MODELS = ("model.int8.onnx", "model.onnx", "model.int8.ort", "model.ort", "model.fp16.onnx")
MAX_RESIZE_RATIO = 4  # zoo writes resize = crop / 0.875 at most; far more only burns memory
MAX_SIDE = 8192
ImageLike = str | Path | Image.Image


class ImageError(ValueError):
    """An image that is missing, truncated or not an image (the message names the file)."""


@functools.cache
def silence_libtiff() -> None:
    """libtiff prints its own errors on stderr ("ZIPDecode: Decoding error ...") before Pillow
    raises the exception reported as one ``error:`` line (or a skipped file); Pillow only
    silences its warnings. Clear libtiff's global handlers in the copy Pillow loaded (found in
    this process's memory map: Linux; elsewhere nothing changes)."""
    import ctypes

    from PIL import _imaging  # noqa: F401  (loads Pillow's libtiff)

    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "/libtiff" in line}
    except OSError:
        return
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("TIFFSetErrorHandler", "TIFFSetErrorHandlerExt", "TIFFSetWarningHandler",
                     "TIFFSetWarningHandlerExt"):
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
                setter(None)


silence_libtiff()


@contextlib.contextmanager
def _named_warnings(path: Path) -> Iterator[None]:
    """Pillow warns about damaged files without naming them ("Truncated File Read"): name the file,
    once per message, when it still decodes; drop them when it does not (its error says why).
    Only on the main thread: ``warnings.catch_warnings`` is process-wide."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message).strip() for w in caught):
        warnings.warn(f"{path}: {message}", UserWarning, stacklevel=3)


# ---------------------------------------------------------------- the eval preprocessing

def open_image(path: str | Path, channels: int) -> Image.Image:
    """Decode a file fully and convert it to grayscale (1) or RGB (3)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with _named_warnings(path), Image.open(path) as img:
            img.load()
            return to_mode(img, channels)
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises many types for bad files (a decompression bomb among them)
        raise ImageError(f"{path}: not a readable image ({type(exc).__name__}: {_one_line(exc)})") from None


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Grayscale into a 3-channel model and RGB into a 1-channel model are converted."""
    if channels == 1:
        return img.convert("L")
    if channels == 3:
        return img.convert("RGB")
    raise ImageError(f"unsupported channel count {channels} (expected 1 or 3)")


def resize_crop(img: Image.Image, resize: int, crop: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize the shorter side to ``resize`` then center-crop ``crop``: HxWxC uint8."""
    w, h = img.size
    scale = resize / min(w, h)
    size = (max(resize, round(w * scale)), max(resize, round(h * scale)))
    if size != (w, h):
        img = img.resize(size, INTERPOLATION[interpolation])
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def normalize(batch_hwc: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 NHWC (or HWC) -> float32 NCHW (or CHW), scaled to 0..1 then standardised."""
    x = batch_hwc.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def preprocess(img: Image.Image, spec: Mapping[str, Any]) -> np.ndarray:
    """One PIL image -> float32 CHW, exactly as the training eval pipeline does it."""
    img = to_mode(img, int(spec["channels"]))
    arr = resize_crop(img, int(spec["resize"]), int(spec["crop"]), spec.get("interpolation", "bilinear"))
    return normalize(arr, spec["mean"], spec["std"])


def model_input(img: Image.Image, spec: Mapping[str, Any], contract: Mapping[str, Any]) -> np.ndarray:
    """One PIL image -> one row of the model's input, as its input contract says.

    float32: the normalised CHW array of ``preprocess``. uint8: the resized, cropped pixels
    (the graph scales and normalises them); a grayscale model's pixels are given as gray RGB
    when the graph takes RGB, and its luma of (v, v, v) is exactly v."""
    if contract["dtype"] == "float32":
        return preprocess(img, spec)
    img = to_mode(img, int(spec["channels"]))
    arr = resize_crop(img, int(spec["resize"]), int(spec["crop"]), spec.get("interpolation", "bilinear"))
    if arr.shape[-1] != contract["channels"]:
        arr = np.repeat(arr, contract["channels"], axis=-1)
    return np.ascontiguousarray(arr if contract["layout"] == "NHWC" else arr.transpose(2, 0, 1))


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


# ---------------------------------------------------------------- the model's metadata

def _one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line; past ``limit`` it ends at the last full sentence that
    fits (or the last whole word, with "..."), as zoo.errors.error_head does."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if cut.rfind(". ") > 0:
        return cut[: cut.rfind(". ") + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + "..." if " " in cut else cut


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(value: Any, count: int) -> bool:
    return (isinstance(value, list) and len(value) == count
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value))


def check_spec(spec: Any) -> str | None:
    """What is wrong with a preprocessing spec, or None."""
    if not isinstance(spec, dict):
        return "'preprocessing' is not a JSON object"
    for key in ("resize", "crop", "channels", "mean", "std"):
        if key not in spec:
            return f"'preprocessing' has no '{key}'"
    resize, crop, channels = spec["resize"], spec["crop"], spec["channels"]
    if not (_is_int(crop) and 1 <= crop <= MAX_SIDE):
        return f"crop {crop!r} is not an integer in 1..{MAX_SIDE}"
    if not (_is_int(resize) and crop <= resize <= MAX_RESIZE_RATIO * crop):
        return f"resize {resize!r} is not an integer from the crop ({crop}) to {MAX_RESIZE_RATIO}x it"
    if channels not in (1, 3) or not _is_int(channels):
        return f"channels {channels!r} is not 1 or 3"
    for key in ("mean", "std"):
        if not _numbers(spec[key], channels):
            return f"{key} {spec[key]!r} is not {channels} finite number(s)"
    if min(spec["std"]) <= 0:
        return f"std {spec['std']!r} has a value <= 0"
    if spec.get("interpolation", "bilinear") not in INTERPOLATION:
        return f"interpolation {spec['interpolation']!r} is not one of {', '.join(INTERPOLATION)}"
    return None


def check_contract(contract: Any, spec: Mapping[str, Any]) -> str | None:
    """What is wrong with an input contract, or None."""
    if not isinstance(contract, dict):
        return "'input' is not a JSON object"
    dtype, layout, channels = contract.get("dtype"), contract.get("layout"), contract.get("channels")
    if dtype not in ("float32", "uint8"):
        return f"input dtype {dtype!r} is not float32 or uint8"
    if layout not in ("NCHW", "NHWC") or (dtype == "float32" and layout != "NCHW"):
        return f"input layout {layout!r} is not NCHW{' or NHWC' if dtype == 'uint8' else ''}"
    allowed = {spec["channels"]} if dtype == "float32" else {spec["channels"], 3}
    if channels not in allowed:
        return f"input channels {channels!r} do not fit a {spec['channels']}-channel model"
    return None


def check_graph(
    classes: list[str], spec: Mapping[str, Any], contract: Mapping[str, Any], inputs: Sequence[Any],
    outputs: Sequence[Any],
) -> str | None:
    """What in the metadata disagrees with the graph's input and output, or None."""
    if len(inputs) != 1 or len(outputs) < 1:
        return f"the graph has {len(inputs)} inputs and {len(outputs)} outputs, not 1 and 1"
    shape_in, shape_out = list(inputs[0].shape), list(outputs[0].shape)
    if len(shape_out) != 2:
        return f"the output has shape {shape_out}, not (batch, classes)"
    if isinstance(shape_out[1], int) and shape_out[1] != len(classes):
        return f"'classes' has {len(classes)} names but the model outputs {shape_out[1]} probabilities"
    expected_type = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}[contract["dtype"]]
    if inputs[0].type != expected_type:
        return f"the input is {inputs[0].type} but the metadata says {contract['dtype']}"
    if len(shape_in) != 4:
        return f"the input has shape {shape_in}, not 4-D"
    layout = contract["layout"]
    dims = {"C": shape_in[layout.index("C")], "H": shape_in[layout.index("H")],
            "W": shape_in[layout.index("W")]}
    if isinstance(dims["C"], int) and dims["C"] != contract["channels"]:
        return f"the input has {dims['C']} channels but the metadata says {contract['channels']}"
    for axis in "HW":
        if isinstance(dims[axis], int) and dims[axis] != spec["crop"]:
            return f"the input is {dims['H']}x{dims['W']} but the metadata's crop is {spec['crop']}"
    return None


def read_metadata(
    props: Mapping[str, str], path: str | Path, inputs: Sequence[Any] = (), outputs: Sequence[Any] = ()
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """(class names, preprocessing spec, input contract) from a model's metadata, each checked
    (and against the graph's ``inputs``/``outputs``, onnxruntime NodeArgs, when given)."""
    missing = [k for k in ("classes", "preprocessing") if k not in props]
    if missing:
        raise UsageError(f"{path}: not a zoo predictor (no '{missing[0]}' in its metadata; "
                         "export it with zoo)")
    try:
        classes = json.loads(props["classes"])
        spec = json.loads(props["preprocessing"])
        contract = json.loads(props["input"]) if "input" in props else None
    except ValueError as exc:
        raise UsageError(f"{path}: bad zoo metadata (not JSON: {_one_line(exc)})") from None
    problem = None
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        problem = "'classes' is not a non-empty list of names"
    problem = problem or check_spec(spec)
    if problem is None:
        contract = contract if contract is not None else {
            "dtype": "float32", "layout": "NCHW", "channels": spec["channels"]}
        problem = check_contract(contract, spec)
    if problem is None and inputs:
        problem = check_graph(classes, spec, contract, inputs, outputs)
    if problem:
        raise UsageError(f"{path}: bad zoo metadata: {problem}")
    return classes, spec, contract


def is_ort_format(path: str | Path) -> bool:
    """onnxruntime's ORT format (a flatbuffer with the identifier ORTM), not an ONNX protobuf."""
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"ORTM"


def graph_digest(path: str | Path) -> str | None:
    """sha256 of an ONNX file's serialised graph (field 7 of ModelProto: every weight and node),
    or None when the file has no graph. The metadata (field 14) is outside what is hashed, so the
    digest can travel in it."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        view = memoryview(data)
        try:
            return serialized_graph_digest(view)
        finally:
            view.release()


def serialized_graph_digest(data: memoryview | bytes) -> str | None:
    """``graph_digest`` of a serialised ModelProto, found by walking its top-level protobuf fields."""
    view = memoryview(data)
    pos, end = 0, len(view)

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while pos < end:
            byte = view[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise ValueError("truncated varint")

    while pos < end:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length = varint()
            if field == 7:
                return hashlib.sha256(view[pos : pos + length]).hexdigest()
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return None


# ---------------------------------------------------------------- predictors

@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, most probable first."""

    source: str
    top: list[tuple[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.source, "top": [{"class": c, "prob": round(p, 6)} for c, p in self.top]}


class RuntimePredictor:
    """Preprocessing, batching and class names shared by every exported format.

    Subclasses say how to run one batch (``run``) and set ``classes``, ``preprocessing`` and
    ``input`` (the contract; float32 NCHW unless the model takes uint8 frames)."""

    classes: list[str]
    preprocessing: dict[str, Any]
    input: dict[str, Any] | None = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, num_classes) for a batch of model inputs (see ``load``)."""
        raise NotImplementedError

    def load(self, image: ImageLike) -> np.ndarray:
        """One file or PIL image -> one row of the model's input, as training's eval pipeline makes it."""
        if not isinstance(image, Image.Image):
            image = open_image(image, int(self.preprocessing["channels"]))
        if self.input is None:
            return preprocess(image, self.preprocessing)
        return model_input(image, self.preprocessing, self.input)

    def predict(self, images: Iterable[ImageLike], batch_size: int = 8) -> np.ndarray:
        """Softmax probabilities (N, num_classes), running ``batch_size`` images at a time."""
        if batch_size < 1:
            raise UsageError(f"batch size must be a positive integer, got {batch_size}")
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

        A bad file never stops the others (the caller reports it and exits non-zero at the end)."""
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


def _chunks(items: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _runtime_error(path: Path, exc: BaseException) -> str:
    """onnxruntime's load error as one line, without its '[ONNXRuntimeError] : 1 : FAIL : file.cc:12' head."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (\S+:\d+ \S+ )?", "", _one_line(exc, 400))
    newer = re.search(r"ORT format model version \[(\w+)\] is not supported", text)
    if newer:
        import onnxruntime as ort

        return (f"{path}: ORT format version {newer.group(1)} is newer than onnxruntime {ort.__version__} "
                "reads (a newer onnxruntime converted it); convert the .onnx file with this onnxruntime, "
                "or install the newer one")
    return f"{path}: not a loadable ONNX model ({_one_line(ValueError(text))})"


class OnnxPredictor(RuntimePredictor):
    """``OnnxPredictor("model.onnx").predict(["cat.jpg"])`` -> probabilities (N, num_classes).

    Takes ONNX and ORT-format files alike; the metadata is checked against the graph on load."""

    def __init__(self, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"{self.path}: no such model file")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if threads < 1:
                raise UsageError(f"--threads must be a positive integer, got {threads}")
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                os.fspath(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise UsageError(_runtime_error(self.path, exc)) from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.classes, self.preprocessing, self.input = read_metadata(
            self.metadata, self.path, inputs, outputs)
        expected = self.metadata.get("graph_sha256")
        if expected and not is_ort_format(self.path) and graph_digest(self.path) != expected:
            raise UsageError(f"{self.path}: the graph's sha256 differs from the one recorded at export: "
                             "the file is damaged (or was changed after export); export it again")
        self.input_name = inputs[0].name
        self.input_dtype = np.uint8 if self.input["dtype"] == "uint8" else np.float32

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, self.input_dtype)})[0]


# ---------------------------------------------------------------- the command line

def default_model(folder: Path) -> Path:
    """The first of DEFAULT_MODELS in ``folder`` (a bundle)."""
    for name in DEFAULT_MODELS:
        if (folder / name).is_file():
            return folder / name
    raise UsageError(f"no model given and none beside predict.py ({', '.join(DEFAULT_MODELS)}); use --model")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="predict.py",
        description="Classify images with a zoo model (onnxruntime, numpy and Pillow only).")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="image files and/or folders of images")
    parser.add_argument("--model", type=Path, help="model file [default: the first of "
                        f"{', '.join(DEFAULT_MODELS)} beside predict.py]")
    parser.add_argument("--top-k", "-k", type=int, default=3, help="classes to show per image [3]")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--batch-size", type=int, default=8, help="images per inference call [8]")
    parser.add_argument("--threads", type=int, help="intra-op threads [default: all cores]")
    args = parser.parse_args(argv)
    try:
        for flag, value in (("--top-k", args.top_k), ("--batch-size", args.batch_size)):
            if value < 1:
                raise UsageError(f"{flag} must be a positive integer, got {value}")
        predictor = OnnxPredictor(args.model or default_model(Path(__file__).resolve().parent),
                                  threads=args.threads)
        paths = expand_inputs(args.inputs)
        if not paths:
            raise UsageError(f"no images found in {', '.join(args.inputs)}")
        failed = 0
        for result in predictor.predict_files(paths, top_k=args.top_k, batch_size=args.batch_size):
            if isinstance(result, ImageError):
                failed += 1
                print(f"error: {result}", file=sys.stderr, flush=True)
            elif args.json:
                print(json.dumps(result.as_dict()), flush=True)
            else:
                print(result.source, *(f"{c} {p:.2%}" for c, p in result.top), sep="  ", flush=True)
        if failed:
            print(f"error: {failed} of {len(paths)} image(s) could not be read", file=sys.stderr)
            return 1
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (predict.py ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
