"""The eval preprocessing, written once in numpy + Pillow.

Training's eval split, export validation and the torch-free runtime all call these
functions, so an exported model sees exactly the pixels the trained model saw.
Spec keys (saved as ``preprocessing`` in a run's config.json and in ONNX metadata):
``resize`` (shorter side, px), ``crop`` (square, px), ``channels`` (1 or 3),
``mean`` and ``std`` (per channel, on the 0..1 scale), ``interpolation`` ("bilinear").
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

_INTERPOLATION = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "nearest": Image.Resampling.NEAREST}


@functools.cache
def silence_libtiff() -> None:
    """libtiff prints its own errors on stderr ("ZIPDecode: Decoding error ...") before Pillow
    raises the exception zoo reports as one ``error:`` line (or a skipped file); Pillow only
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


class ImageError(ValueError):
    """An image that is missing, truncated or not an image (the message names the file)."""


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


def open_image(path: str | Path, channels: int) -> Image.Image:
    """Decode a file fully and convert it to grayscale (1) or RGB (3)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with _named_warnings(path), Image.open(path) as img:
            img.load()
            return to_mode(img, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None


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
        img = img.resize(size, _INTERPOLATION[interpolation])
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
