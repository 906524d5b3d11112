"""Decoding samples into the uint8 pixels that training and evaluation start from.

Everything goes through zoo.runtime.preprocess (open_image, to_mode, resize_crop), so files
and in-memory arrays, cached or not, yield the pixels the edge runtime computes. Decoding stays
with Pillow: torchvision.io decodes JPEGs faster, but the resize that must match the runtime needs
a PIL image, and making one of its tensor costs what it saved (benchmarks/RESULTS.md, "Large image
folders").

A file that cannot be decoded (in a folder too large to check up front, zoo.data.folders) raises
``ImageError``; ``decode_all`` and the loaders skip it and ``warn_unreadable`` says so once.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from zoo.data.splits import SampleSet
from zoo.runtime.preprocess import _INTERPOLATION, ImageError, open_image, resize_crop, to_mode

_MODES = {1: "L", 3: "RGB"}
_warned: set[str] = set()


def warn_unreadable(error: ImageError) -> None:
    """One stderr line per unreadable file and process (workers each report what they meet)."""
    text = str(error)
    if text not in _warned:
        _warned.add(text)
        print(f"warning: skipped {text}", file=sys.stderr, flush=True)


def pil_image(samples: SampleSet, index: int, channels: int) -> Image.Image:
    """Sample ``index`` as a PIL image in grayscale (1) or RGB (3)."""
    if samples.images is not None:
        image = Image.fromarray(samples.images[index])
        return image if image.mode == _MODES[channels] else to_mode(image, channels)
    assert samples.paths is not None
    return open_image(samples.paths[index], channels)


def base_array(
    samples: SampleSet, index: int, channels: int, resize: int, side: int, interpolation: str = "bilinear"
) -> np.ndarray:
    """Shorter side resized to ``resize``, center ``side`` x ``side`` crop: HxWxC uint8."""
    image = pil_image(samples, index, channels)
    if image.width == image.height and resize == side:
        # Square in, square out: resize_crop's center crop is the whole image, so skip it
        # (a third of the time for small in-memory images; the tests check the pixels agree).
        if image.width != side:
            image = image.resize((side, side), _INTERPOLATION[interpolation])
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels
    return resize_crop(image, resize, side, interpolation)


def decode_all(samples: SampleSet, indices: list[int], channels: int, resize: int, side: int,
               interpolation: str = "bilinear") -> tuple[np.ndarray, list[int]]:
    """``base_array`` of many samples, stacked NxHxWxC, and the positions that could not be decoded
    (their rows are zeros; each is warned about). Files decode in threads (Pillow releases the
    GIL); small in-memory images run faster serially than contending for the GIL."""
    out = np.empty((len(indices), side, side, channels), dtype=np.uint8)
    failed: list[int] = []

    def fill(pos: int) -> None:
        try:
            out[pos] = base_array(samples, indices[pos], channels, resize, side, interpolation)
        except ImageError as error:
            out[pos] = 0
            failed.append(pos)
            warn_unreadable(error)

    workers = min(8, os.cpu_count() or 1)
    if samples.paths is None or len(indices) < 256 or workers == 1:
        for pos in range(len(indices)):
            fill(pos)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fill, range(len(indices)), chunksize=64))
    return out, sorted(failed)
